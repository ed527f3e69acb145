"""A small HTTP/1.1 load generator: pre-built requests, N connections, latency per request.

    python bench/loadgen.py --port P --requests FILE [--concurrency 16] [--warmup 400]
                            [--duration 60]

FILE holds the raw requests (bytes, each prefixed by its length as 4 bytes,
big-endian), built and signed beforehand so this process only sends and
times. Each of --concurrency threads keeps one connection open while the
server allows it (gunicorn's sync worker closes after each response, gthread
keeps it alive) and reconnects when it does not. Prints one JSON object:
counts, elapsed seconds and every latency in milliseconds.
"""

from __future__ import annotations

import argparse
import itertools
import json
import socket
import struct
import sys
import threading
import time


class Connection:
    """One client connection that sends a request and reads one whole response."""

    def __init__(self, port: int) -> None:
        self.port = port
        self.sock: socket.socket | None = None

    def _open(self) -> socket.socket:
        sock = socket.create_connection(("127.0.0.1", self.port), timeout=30)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return sock

    def close(self) -> None:
        if self.sock is not None:
            self.sock.close()
            self.sock = None

    def roundtrip(self, request: bytes) -> int:
        """Send one request, return the response status; reconnect once if a kept-alive
        connection turns out to be closed."""
        reused = self.sock is not None
        try:
            return self._roundtrip(request)
        except (ConnectionError, EOFError):
            self.close()
            if not reused:
                raise
            return self._roundtrip(request)

    def _roundtrip(self, request: bytes) -> int:
        if self.sock is None:
            self.sock = self._open()
        sock = self.sock
        sock.sendall(request)
        buffer = b""
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed before the response headers")
            buffer += chunk
        head, _, body = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        status = int(lines[0].split()[1])
        fields = (line.partition(":") for line in lines[1:])
        headers = {name.strip().lower(): value.strip() for name, _, value in fields}
        length = int(headers.get("content-length", "0"))
        while len(body) < length:
            chunk = sock.recv(65536)
            if not chunk:
                raise EOFError("connection closed inside the response body")
            body += chunk
        if headers.get("connection", "").lower() == "close" or lines[0].startswith("HTTP/1.0"):
            self.close()
        return status


def read_requests(path: str) -> list[bytes]:
    """Read the length-prefixed requests written by bench/webhook_load.py."""
    data = open(path, "rb").read()
    requests, offset = [], 0
    while offset < len(data):
        (size,) = struct.unpack_from(">I", data, offset)
        requests.append(data[offset + 4: offset + 4 + size])
        offset += 4 + size
    return requests


def run(port: int, requests: list[bytes], concurrency: int, deadline: float,
        measure: bool) -> dict[str, object]:
    """Send the requests over `concurrency` connections; return counts and latencies."""
    tickets = itertools.count()  # next() on it is atomic under the GIL
    latencies: list[list[float]] = [[] for _ in range(concurrency)]
    errors: dict[str, int] = {}
    lock = threading.Lock()

    def worker(slot: int) -> None:
        connection = Connection(port)
        clock = time.perf_counter
        mine = latencies[slot]
        while True:
            i = next(tickets)
            if i >= len(requests) or clock() > deadline:
                break
            started = clock()
            try:
                status = connection.roundtrip(requests[i])
                kind = None if status == 200 else f"HTTP {status}"
            except (OSError, EOFError, ValueError, IndexError) as exc:
                connection.close()
                kind = type(exc).__name__
            if kind is None:
                if measure:
                    mine.append((clock() - started) * 1000.0)
            else:
                with lock:
                    errors[kind] = errors.get(kind, 0) + 1
        connection.close()

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(concurrency)]
    started = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    elapsed = time.perf_counter() - started
    merged = [x for part in latencies for x in part]
    return {"sent": len(merged) + sum(errors.values()), "ok": len(merged), "errors": errors,
            "elapsed_s": elapsed, "latencies_ms": merged}


def main() -> int:
    """Warm up, then send the measured load; print the result as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--requests", required=True, help="file of length-prefixed requests")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--warmup", type=int, default=400, help="unmeasured requests first")
    parser.add_argument("--duration", type=float, default=60.0, help="stop after this long")
    args = parser.parse_args()
    requests = read_requests(args.requests)
    warm, measured = requests[: args.warmup], requests[args.warmup:]
    run(args.port, warm, args.concurrency, time.perf_counter() + args.duration, measure=False)
    result = run(args.port, measured, args.concurrency, time.perf_counter() + args.duration,
                 measure=True)
    json.dump(result, sys.stdout)
    return 0


if __name__ == "__main__":
    sys.exit(main())
