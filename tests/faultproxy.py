"""A TCP proxy the test owns, between the app and PostgreSQL or Redis, that fails on cue.

    with FaultProxy(5432) as proxy:            # listens on 127.0.0.1:proxy.port
        proxy.refuse()   # stopped server: new connections refused, open ones reset
        proxy.drop()     # crashing server: open and new connections reset (RST)
        proxy.freeze()   # SIGSTOPped server or dead network: connections stay open and
                         # accept bytes (the kernel buffers them), nothing comes back
        proxy.heal()     # forwarding again; a frozen connection resumes where it stopped

Nothing outside the test is touched: the machine's PostgreSQL and Redis keep
running, only the path to them through this proxy breaks.
"""

from __future__ import annotations

import selectors
import socket
import struct
import threading
import time
from types import TracebackType

POLL_SECONDS = 0.02
BUFFER = 65536


def _reset(sock: socket.socket) -> None:
    """Close with an RST (SO_LINGER 0), as a crashed peer's kernel would."""
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    except OSError:
        pass
    sock.close()


class FaultProxy:
    """Forward 127.0.0.1:port to 127.0.0.1:upstream, breaking the path when told."""

    def __init__(self, upstream: int, host: str = "127.0.0.1") -> None:
        self.upstream = (host, upstream)
        self.mode = "forward"  # forward, refuse, drop or freeze
        self.connections = 0  # accepted so far (a test can check the app came through here)
        self._lock = threading.Lock()
        self._generation = 0  # bumped by every reset: older connections reset themselves
        self._closed = threading.Event()
        self._listener: socket.socket | None = None
        self.port = 0
        self._listen()
        self._thread = threading.Thread(target=self._accept_loop, name="faultproxy", daemon=True)
        self._thread.start()

    def __enter__(self) -> FaultProxy:
        return self

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None,
                 trace: TracebackType | None) -> None:
        self.close()

    def _listen(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(("127.0.0.1", self.port))
        listener.listen(128)
        listener.settimeout(POLL_SECONDS * 5)
        self.port = listener.getsockname()[1]
        self._listener = listener

    # -- faults -------------------------------------------------------------------
    def refuse(self) -> None:
        """Refuse new connections (nothing listens) and reset the open ones."""
        with self._lock:
            self.mode = "refuse"
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._reset_all()

    def drop(self) -> None:
        """Reset every open connection, and each new one as soon as it is accepted."""
        with self._lock:
            self.mode = "drop"
        self._reset_all()

    def freeze(self) -> None:
        """Stop moving bytes either way; connections stay open and new ones hang."""
        with self._lock:
            self.mode = "freeze"

    def heal(self) -> None:
        """Forward again (listening again after refuse())."""
        with self._lock:
            if self._listener is None:
                self._listen()
            self.mode = "forward"

    def close(self) -> None:
        """Stop the proxy and reset every connection."""
        self._closed.set()
        with self._lock:
            if self._listener is not None:
                self._listener.close()
                self._listener = None
        self._reset_all()
        self._thread.join(timeout=5)

    def _reset_all(self) -> None:
        # Each relay thread resets its own sockets within POLL_SECONDS: closing them from
        # here could hand a reused descriptor number to a selector still watching it.
        with self._lock:
            self._generation += 1

    # -- forwarding ---------------------------------------------------------------
    def _accept_loop(self) -> None:
        while not self._closed.is_set():
            listener = self._listener
            if listener is None:
                time.sleep(POLL_SECONDS)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            self.connections += 1
            if self.mode == "drop":
                _reset(client)
                continue
            threading.Thread(target=self._relay, args=(client,), daemon=True).start()

    def _relay(self, client: socket.socket) -> None:
        generation = self._generation
        while self.mode == "freeze" and not self._closed.is_set():
            time.sleep(POLL_SECONDS)  # a frozen server's kernel accepted; nobody answers
        if generation != self._generation or self.mode in ("drop", "refuse"):
            _reset(client)
            return
        try:
            upstream = socket.create_connection(self.upstream, timeout=5)
        except OSError:
            _reset(client)
            return
        peers = {client: upstream, upstream: client}
        with selectors.DefaultSelector() as selector:
            for sock in peers:
                selector.register(sock, selectors.EVENT_READ)
            try:
                while not self._closed.is_set() and generation == self._generation:
                    if self.mode == "freeze":
                        time.sleep(POLL_SECONDS)
                        continue
                    for key, _ in selector.select(POLL_SECONDS):
                        sock = key.fileobj
                        assert isinstance(sock, socket.socket)
                        data = sock.recv(BUFFER)
                        if not data:
                            raise ConnectionResetError
                        peers[sock].sendall(data)
            except OSError:
                pass
        if generation != self._generation or self._closed.is_set():
            _reset(client)
            _reset(upstream)
        else:
            client.close()
            upstream.close()
