"""A real CalfLine server process for tests: gunicorn with two workers on 127.0.0.1."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import IO

ROOT = Path(__file__).resolve().parent.parent
GUNICORN = Path(sys.executable).with_name("gunicorn")


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class RunningServer:
    """A gunicorn started by gunicorn_process(): its URL, process and log so far."""

    base: str
    process: subprocess.Popen[bytes]
    log: IO[bytes]

    def log_text(self) -> str:
        """Everything the server wrote to stderr so far (its JSON log lines)."""
        # A new open file description: seeking the shared one would move the server's
        # write offset too (Linux /proc/self/fd).
        with open(f"/proc/self/fd/{self.log.fileno()}", "rb") as log:
            return log.read().decode("utf-8", "replace")


@contextmanager
def gunicorn(env: Mapping[str, str], workers: int = 2, timeout: float = 180) -> Iterator[str]:
    """Run `gunicorn -w N responder:create_app()`; yield its base URL once /healthz answers."""
    with gunicorn_process(env, workers, timeout) as server:
        yield server.base


@contextmanager
def gunicorn_process(env: Mapping[str, str], workers: int = 2, timeout: float = 180,
                     prefix: Sequence[str] = ()) -> Iterator[RunningServer]:
    """gunicorn() that yields the process and its log; `prefix` wraps the command."""
    port = free_port()
    clean = {k: v for k, v in os.environ.items()
             if not k.startswith(("CALFLINE_", "TWILIO_")) and k != "DATABASE_URL"}
    # A file, not a pipe: nobody reads while the test runs, and a full pipe blocks the server.
    log = tempfile.TemporaryFile()
    spool = tempfile.TemporaryDirectory(prefix="calfline-spool-")  # never the repo's instance/
    process = subprocess.Popen(
        [*prefix, str(GUNICORN), "--preload", "-w", str(workers), "-b", f"127.0.0.1:{port}",
         "--timeout", "120", "responder:create_app()"],
        cwd=ROOT, env={"CALFLINE_SPOOL_DIR": spool.name, **clean, **env},
        stdout=subprocess.DEVNULL, stderr=log,
    )
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + timeout
        while True:
            if process.poll() is not None:
                log.seek(0)
                raise AssertionError(f"gunicorn exited: {log.read()[-3000:]!r}")
            try:
                with urllib.request.urlopen(base + "/healthz", timeout=2) as response:
                    if response.status == 200:
                        break
            except OSError:
                pass
            assert time.monotonic() < deadline, "gunicorn did not become healthy"
            time.sleep(0.2)
        yield RunningServer(base, process, log)
    except AssertionError:
        log.seek(0)
        sys.stderr.write(log.read()[-5000:].decode("utf-8", "replace"))  # shown by pytest
        raise
    finally:
        process.terminate()
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.close()
        spool.cleanup()
