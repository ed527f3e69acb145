"""What the line does when its dependencies fail, at 20 signed texts a second.

    python bench/faults.py [--rate 20] [--short]    # ~3 min; --short: 3 s outages

The issue's scenarios, each on a real gunicorn (tests/servers.py: `--preload
-w 2`, sync workers of one thread as deployed; CALFLINE_WEBHOOK_BUDGET 5 s,
CALFLINE_STORE_TIMEOUT 1 s, CALFLINE_REDIS_TIMEOUT 0.5 s): PostgreSQL stopped
(connections refused) for 10 s, frozen for 20 s, its connections dropped for 10 s; Redis stopped and
frozen for 10 s each; the SQLite disk full for 10 s, and its database read-only
after a worker restart for 10 s. The servers and checks are the fault tests'
(tests/channels/fault_servers.py, tests/channels/outage.py): every text must get
a 200 with TwiML within the budget, and after recovery one record per
MessageSid, one clinic alert per red flag, the opt-outs right, one warning per
outage and no traceback; a failed check stops the script. It prints the
latencies the senders saw and how long /readyz took to say ready again.
"""

from __future__ import annotations

import argparse
import os
import platform
import sys
import tempfile
from collections.abc import Callable
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from tests.channels.fault_servers import (  # noqa: E402
    DiskLine,
    ProxiedLine,
    namespaces_work,
    private_disk_server,
    proxied_server,
)
from tests.channels.outage import Figures, run_outage  # noqa: E402


def _row(name: str, seconds: float, figures: Figures) -> str:
    return (f"{name:<34} {seconds:>4.0f} s {figures.webhooks:>6} {figures.answered:>6} "
            f"{figures.p50_ms:>7.1f} {figures.max_ms:>8.1f} {figures.ready_after_s:>8.2f}")


def proxied_scenarios(tmp: Path, rate: float, short: bool) -> list[str]:
    tmp.mkdir(parents=True)
    rows = []
    with proxied_server(tmp) as line:
        scenarios: list[tuple[str, float, Callable[[ProxiedLine], object], str]] = [
            ("PostgreSQL stopped (refused)", 10, lambda lin: lin.postgres, "refuse"),
            ("PostgreSQL frozen", 20, lambda lin: lin.postgres, "freeze"),
            ("PostgreSQL connections dropped", 10, lambda lin: lin.postgres, "drop"),
            ("Redis stopped (refused)", 10, lambda lin: lin.redis, "refuse"),
            ("Redis frozen", 10, lambda lin: lin.redis, "freeze"),
        ]
        for name, seconds, which, fault in scenarios:
            seconds = 3 if short else seconds
            proxy = which(line)
            dependency = "database" if "PostgreSQL" in name else "Redis"
            figures = run_outage(line.server, lambda: line.database_url, line.hook,
                                 getattr(proxy, fault), proxy.heal,  # type: ignore[attr-defined]
                                 dependency, seconds=seconds, rate=rate)
            rows.append(_row(name, seconds, figures))
            print(rows[-1], flush=True)
    return rows


def disk_scenarios(tmp: Path, rate: float, short: bool) -> list[str]:
    tmp.mkdir(parents=True)
    if not namespaces_work(Path(tempfile.mkdtemp(dir=tmp))):
        print("SQLite disk scenarios skipped: unshare -Urm (user namespaces) not available")
        return []
    rows = []
    with private_disk_server(tmp) as line:
        scenarios: list[tuple[str, Callable[[DiskLine], None], Callable[[DiskLine], None]]] = [
            ("SQLite disk full", DiskLine.fill, DiskLine.empty),
            ("SQLite read-only after a restart", DiskLine.read_only, DiskLine.writable),
        ]
        for name, breaks, heals in scenarios:
            seconds = 3 if short else 10
            figures = run_outage(line.server, line.database_url, line.hook,
                                 lambda b=breaks: b(line), lambda h=heals: h(line),
                                 "database", seconds=seconds, rate=rate)
            rows.append(_row(name, seconds, figures))
            print(rows[-1], flush=True)
    return rows


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rate", type=float, default=20.0, help="signed texts a second")
    parser.add_argument("--short", action="store_true", help="3 s outages (a quick look)")
    args = parser.parse_args()
    load = ", ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"{os.cpu_count()} cores, Python {platform.python_version()}, load average {load}; "
          f"{args.rate:g} signed webhooks a second during each outage (among them a red-flag "
          "text and Twilio's re-sent copy, a red-flag call turn, a STOP, opted-out senders)")
    print(f"{'scenario':<34} {'outage':>6} {'texts':>6} {'200s':>6} {'p50 ms':>7} "
          f"{'max ms':>8} {'ready s':>8}")
    with tempfile.TemporaryDirectory(prefix="calfline-faults-") as tmp:
        proxied_scenarios(Path(tmp) / "proxied", args.rate, args.short)
        disk_scenarios(Path(tmp) / "disk", args.rate, args.short)
    print("every text answered within the 5 s budget; after each outage one record per "
          "MessageSid, one alert per red flag, opt-outs kept, one warning per outage")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
