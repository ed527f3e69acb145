"""Gunicorn settings for CalfLine: `gunicorn -c deploy/gunicorn.conf.py wsgi:app`.

Every knob comes from the environment (unset or empty means the default) with
defaults that suit one small server behind a TLS proxy on the same host
(docs.gunicorn.org/en/stable/settings.html).
"""

from __future__ import annotations

import gc
import os
from typing import Any

from gunicorn.glogging import Logger

from responder.web.logging_setup import server_request_line

# Where to listen. Behind nginx on the same host keep 127.0.0.1; in a
# container use 0.0.0.0 (the Dockerfile does).
bind = os.environ.get("CALFLINE_BIND") or "127.0.0.1:8000"

# Matching is CPU-bound pure Python, so one process per core is the base, and one
# request at a time per process: since the store stopped waiting on the disk
# (README "Performance"), more threads mostly queue for the GIL and for SQLite's
# one writer. bench/webhook_load.py, back-to-back pairs against 4 threads: SQLite
# 1.09-1.27x the requests per second and 0.64-0.72x the p99; PostgreSQL, whose
# round trips threads do overlap, 0.80x the requests per second but 0.70x the
# p99 (README "Performance"). The webhook still never
# waits past its budget: the store's work has its own time limit, held by a
# watchdog thread on PostgreSQL and by SQLite's own waits (responder/store/guard.py),
# which the fault tests exercise on sync workers.
# A sync worker needs a buffering proxy in front (nginx): a slow client holds it.
# CALFLINE_THREADS=4 gives the gthread worker (keep-alive, overlapped waits).
workers = int(os.environ.get("CALFLINE_WORKERS") or os.cpu_count() or 1)
threads = int(os.environ.get("CALFLINE_THREADS") or 1)
worker_class = "gthread" if threads > 1 else "sync"

# Build the app (load intents, fit the matcher) once in the master, then fork:
# workers share those pages copy-on-write instead of each training its own.
preload_app = True

# `timeout` is not a request timeout. A gthread worker's main loop tells the master
# it is alive on every turn while its request threads wait, so only a worker whose
# main loop is stuck is killed after 30 s (with CALFLINE_THREADS=1, the sync worker,
# also one request stuck that long). Twilio gives up after 15 s
# (twilio.com/docs/errors/11205): the app keeps every webhook inside
# CALFLINE_WEBHOOK_BUDGET (5 s) itself, waiting at most CALFLINE_STORE_TIMEOUT for
# the database and CALFLINE_REDIS_TIMEOUT for Redis before answering without them
# (README "When things fail"; tests/channels/test_faults.py).
timeout = 30
graceful_timeout = 30
keepalive = 5

# Heartbeat files on tmpfs: a slow disk (or Docker's overlay) cannot stall workers.
worker_tmp_dir = "/dev/shm" if os.path.isdir("/dev/shm") else None

# No control socket: nothing uses it, and two instances would fight over its path.
control_socket_disable = True

# TLS ends at the proxy; trust its X-Forwarded-Proto only from these addresses.
forwarded_allow_ips = os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1,::1"

# Access log: each request's one JSON line (responder/web/logging_setup.py), with the
# intent and request id the app leaves in the WSGI environ, written once the response is
# out; the app then writes none itself (CALFLINE_REQUEST_LOG=server). Never the query
# string (a GET webhook carries From and Body) or the Referer, and phone-number-like
# digit runs in the path are masked. With CALFLINE_ACCESS_LOG=off the app writes the
# line to stderr instead.
_access = os.environ.get("CALFLINE_ACCESS_LOG") or "-"
accesslog = None if _access.lower() in {"off", "none"} else _access
raw_env = ["CALFLINE_REQUEST_LOG=server"] if accesslog else []
errorlog = "-"
loglevel = (os.environ.get("CALFLINE_LOG_LEVEL") or "info").lower()


class JsonAccessLogger(Logger):
    """Gunicorn's logger, its access lines being CalfLine's JSON request lines."""

    def access(self, resp: Any, req: Any, environ: Any, request_time: Any) -> None:
        if not self.access_log_enabled:
            return
        try:
            status = int(str(resp.status).split(None, 1)[0])
            self.access_log.info(server_request_line(
                environ, status, request_time.total_seconds(), resp.headers))
        except Exception:  # a log line must never cost the answer
            self.exception("access log line failed")


logger_class = JsonAccessLogger


def pre_fork(server: Any, worker: Any) -> None:
    """Move the preloaded objects out of the collector's reach before forking.

    Otherwise the first collection in each worker touches every object and
    copies the shared pages (docs.python.org/3/library/gc.html#gc.freeze).
    """
    gc.freeze()
