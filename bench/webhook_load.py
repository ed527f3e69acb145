"""Load-test the signed SMS webhook under gunicorn, beside a trivial Flask endpoint.

    python bench/webhook_load.py [--requests 20000] [--concurrency 16] [--workers 2]
                                 [--duration 60] [--rounds 3]

Both apps run under deploy/gunicorn.conf.py as written (2 workers) on
127.0.0.1, one after the other. CalfLine runs with TWILIO_AUTH_TOKEN set, so
every request's X-Twilio-Signature is checked; the requests are signed up
front with Twilio's RequestValidator and carry Twilio's usual form fields, a
message from tests/data/dev.tsv and a fresh MessageSid (no dedupe shortcut),
and the conversation store writes to a fresh SQLite file (or --database-url).
The per-IP rate limit is off (all the load comes from 127.0.0.1); the
per-sender limit is as shipped. A separate process
(bench/loadgen.py) sends them; this script prints requests per second,
p50/p99 latency, errors and each worker's peak memory, then the ratios. It also
prints the CPU time each request cost the workers, the load generator and, for a
PostgreSQL server on this machine, the server: on two shared cores these add up
to what bounds the requests per second, and they vary less between runs than
the rates do when other machines share the host. It also prints the share of
the cores the hypervisor gave other guests meanwhile (steal time, from
/proc/stat): a round that lost a tenth of the machine that way runs slower
and has a longer tail whatever the code does. Beside the client's latency it
prints the time each request spent inside a worker, from the server's access
log: with a fixed number of connections the rest is the wait in the queue,
which the rate sets (16 in flight at 800 req/s wait 20 ms on average).

The host's speed drifts by a fifth within minutes, and one run of each app
compares two different minutes, so the apps run in --rounds rounds (3),
alternating which goes first, and the goals are checked on the medians.
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import platform
import resource
import secrets
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

ROOT = Path(__file__).resolve().parent.parent
CONFIG = ROOT / "deploy" / "gunicorn.conf.py"
TOKEN = "bench-auth-token"
OUR_NUMBER = "+15550006000"
TRIVIAL, CALFLINE = "trivial Flask", "CalfLine /sms"


def free_port() -> int:
    """Return a TCP port nobody listens on right now."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def dev_messages() -> list[str]:
    """Return the development set's messages."""
    with open(ROOT / "tests" / "data" / "dev.tsv", encoding="utf-8", newline="") as handle:
        return [row["text"] for row in csv.DictReader(handle, delimiter="\t")]


def signed_requests(port: int, count: int) -> list[bytes]:
    """Build `count` raw POST /sms requests, each signed the way Twilio signs it."""
    url = f"http://127.0.0.1:{port}/sms"
    validator = RequestValidator(TOKEN)
    messages = dev_messages()
    account = "AC" + secrets.token_hex(16)
    built = []
    for i in range(count):
        sid = "SM" + secrets.token_hex(16)
        params = {
            "ToCountry": "US", "ToState": "CA", "SmsMessageSid": sid, "NumMedia": "0",
            "ToCity": "", "FromZip": "", "SmsSid": sid, "FromState": "CA",
            "SmsStatus": "received", "FromCity": "", "Body": messages[i % len(messages)],
            "FromCountry": "US", "To": OUR_NUMBER, "ToZip": "", "NumSegments": "1",
            "MessageSid": sid, "AccountSid": account, "From": f"+1555{1000000 + i % 997:07d}",
            "ApiVersion": "2010-04-01",
        }
        body = urlencode(params).encode()
        head = (
            f"POST /sms HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n"
            "Content-Type: application/x-www-form-urlencoded\r\n"
            f"Content-Length: {len(body)}\r\n"
            f"X-Twilio-Signature: {validator.compute_signature(url, params)}\r\n"
            "User-Agent: TwilioProxy/1.1\r\n\r\n"
        )
        built.append(head.encode() + body)
    return built


def server_logs(logdir: Path, app: str) -> tuple[Path, Path]:
    """Where gunicorn serving `app` writes its stdout (the JSON access lines) and stderr."""
    name = app.split(":")[0].replace(".", "_")
    return logdir / f"{name}.out", logdir / f"{name}.err"


def start_gunicorn(app: str, port: int, workers: int, env: dict[str, str],
                   logdir: Path) -> subprocess.Popen[bytes]:
    """Start gunicorn with the deploy config and wait until /healthz answers."""
    env = {**env, "CALFLINE_BIND": f"127.0.0.1:{port}", "CALFLINE_WORKERS": str(workers)}
    out, err = server_logs(logdir, app)
    process = subprocess.Popen(
        [sys.executable, "-m", "gunicorn", "--config", str(CONFIG), app],
        cwd=ROOT, env=env, stdout=open(out, "wb"),
        stderr=open(err, "wb"),
    )
    deadline = time.monotonic() + 180
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise SystemExit(f"gunicorn {app} exited: see {err}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2):
                return process
        except OSError:
            time.sleep(0.2)
    process.kill()
    raise SystemExit(f"gunicorn {app} did not answer /healthz within 180 s")


def processes() -> Iterator[tuple[Path, dict[str, str], int]]:
    """Yield each running process's /proc directory, its status fields and its parent."""
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            status = (entry / "status").read_text()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        yield entry, fields, int(fields.get("PPid", "0").strip() or 0)


def cpu_seconds(entry: Path) -> float:
    """A process's user + system CPU time so far, in seconds (0 once it is gone)."""
    try:
        fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def cpu_snapshot(master: int, database_url: str) -> dict[str, dict[int, float]]:
    """CPU seconds so far of the app's workers and, for a PostgreSQL URL on this
    machine, of every PostgreSQL server process (they share the cores)."""
    local_pg = database_url.startswith("postgresql") and (
        "@127.0.0.1" in database_url or "@localhost" in database_url)
    snapshot: dict[str, dict[int, float]] = {"workers": {}, "PostgreSQL": {}}
    for entry, fields, parent in processes():
        if parent == master:
            snapshot["workers"][int(entry.name)] = cpu_seconds(entry)
        elif local_pg and fields.get("Name", "").strip() == "postgres":
            snapshot["PostgreSQL"][int(entry.name)] = cpu_seconds(entry)
    return snapshot


def host_ticks() -> tuple[int, int]:
    """The machine's CPU ticks so far, all and those the hypervisor took for other
    guests (steal), from /proc/stat's first line (0 steal where it has none)."""
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    # user nice system idle iowait irq softirq steal, then guest time, already in user
    return sum(ticks[:8]), ticks[7] if len(ticks) > 7 else 0


def cpu_per_request(before: dict[str, dict[int, float]], after: dict[str, dict[int, float]],
                    requests: int) -> dict[str, float]:
    """Milliseconds of CPU per request between two snapshots; a process that started
    in between counts from zero."""
    return {kind: 1000 * sum(cpu - before[kind].get(pid, 0.0)
                             for pid, cpu in after[kind].items()) / max(requests, 1)
            for kind in after}


def worker_memory(master: int) -> list[dict[str, float]]:
    """Return each worker's memory in MB: peak resident (VmHWM, shared pages counted in
    full), proportional (Pss, shared pages split between sharers) and private."""
    workers = []
    for entry, fields, parent in processes():
        if parent != master:
            continue
        rollup: dict[str, float] = {}
        try:
            for line in (entry / "smaps_rollup").read_text().splitlines():
                name, _, value = line.partition(":")
                if value.strip().endswith("kB"):
                    rollup[name] = int(value.split()[0]) / 1024
        except OSError:
            pass
        hwm = int(fields.get("VmHWM", "0 kB").split()[0]) / 1024
        private = rollup.get("Private_Clean", 0.0) + rollup.get("Private_Dirty", 0.0)
        workers.append({"pid": int(entry.name), "hwm_mb": hwm,
                        "pss_mb": rollup.get("Pss", 0.0), "private_mb": private})
    return sorted(workers, key=lambda w: w["pid"])


def percentile(values: list[float], q: float) -> float:
    """Return the q-th percentile (nearest rank)."""
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    return ordered[min(len(ordered) - 1, max(0, round(q / 100 * len(ordered)) - 1))]


def load(app: str, args: argparse.Namespace, env: dict[str, str], logdir: Path) -> dict[str, Any]:
    """Serve one app, load it from a separate process, and collect the figures."""
    port = free_port()
    requests = signed_requests(port, args.warmup + args.requests)
    blob = logdir / f"requests-{port}.bin"
    blob.write_bytes(b"".join(struct.pack(">I", len(r)) + r for r in requests))
    server = start_gunicorn(app, port, args.workers, env, logdir)
    try:
        database_url = env.get("DATABASE_URL", "")
        before = cpu_snapshot(server.pid, database_url)
        children = resource.getrusage(resource.RUSAGE_CHILDREN)
        ticks_before = host_ticks()
        generator = subprocess.run(
            [sys.executable, str(ROOT / "bench" / "loadgen.py"), "--port", str(port),
             "--requests", str(blob), "--concurrency", str(args.concurrency),
             "--warmup", str(args.warmup), "--duration", str(args.duration)],
            capture_output=True, text=True, timeout=2 * args.duration + 60, check=True,
        )
        result: dict[str, Any] = json.loads(generator.stdout)
        (total, stolen), (total_before, stolen_before) = host_ticks(), ticks_before
        result["steal"] = (stolen - stolen_before) / max(total - total_before, 1)
        served = args.warmup + result["ok"] + sum(result["errors"].values())
        result["cpu"] = cpu_per_request(before, cpu_snapshot(server.pid, database_url), served)
        spent = resource.getrusage(resource.RUSAGE_CHILDREN)
        result["cpu"]["load generator"] = 1000 * (
            spent.ru_utime + spent.ru_stime - children.ru_utime - children.ru_stime) / served
        result["memory"] = worker_memory(server.pid)
    finally:
        server.send_signal(signal.SIGTERM)
        try:
            server.wait(timeout=30)
        except subprocess.TimeoutExpired:
            server.kill()
    latencies = result.pop("latencies_ms")
    served_ms = served_latencies(server_logs(logdir, app)[0], args.warmup)
    result["served"] = {"p50": percentile(served_ms, 50), "p99": percentile(served_ms, 99),
                        "mean": statistics.fmean(served_ms) if served_ms else float("nan")}
    result.update({
        "rps": result["ok"] / result["elapsed_s"] if result["elapsed_s"] else 0.0,
        "p50": percentile(latencies, 50), "p99": percentile(latencies, 99),
        "mean": statistics.fmean(latencies) if latencies else float("nan"),
    })
    return result


def served_latencies(access_log: Path, warmup: int) -> list[float]:
    """Each POST /sms's time inside a worker, from the server's JSON access lines
    (deploy/gunicorn.conf.py), the warm-up's first: the client's latency less the
    wait in the listen queue, which at a fixed number of connections is what the
    rate sets (Little's law)."""
    served = []
    for line in access_log.read_text(errors="replace").splitlines():
        try:
            fields = json.loads(line)
        except ValueError:  # gunicorn's own start-up lines
            continue
        if isinstance(fields, dict) and fields.get("path") == "/sms" \
                and fields.get("latency_ms") is not None:
            served.append(float(fields["latency_ms"]))
    return served[warmup:]


def fit_model_if_stale() -> None:
    """Fit the matcher's model file first, as deploy/Dockerfile and scripts/serve.sh do.

    Without it gunicorn's master fits the model itself at start-up (about 15 s) and
    keeps scikit-learn and SciPy in the pages it shares with the workers, which
    then measure 114 MB PSS each instead of about 63 MB: not what a deployment runs.
    """
    subprocess.run([sys.executable, "-m", "responder.cli", "train", "--if-stale"],
                   cwd=ROOT, check=True, stdout=subprocess.DEVNULL, timeout=600)


def machine() -> str:
    """Describe the machine: cores, CPU model, Python, load average before the run."""
    model = "unknown CPU"
    for line in Path("/proc/cpuinfo").read_text().splitlines():
        if line.startswith("model name"):
            model = line.split(":", 1)[1].strip()
            break
    load1, load5, _ = os.getloadavg()
    return (f"{os.cpu_count()} cores ({model}), Python {platform.python_version()} "
            f"({os.path.realpath(sys.executable)}), "
            f"load average {load1:.2f}/{load5:.2f} before the run")


def print_round(number: int, results: dict[str, dict[str, Any]]) -> None:
    """One round's figures: each app's line, its CPU per request, then the ratio."""
    for name, r in results.items():
        errors = sum(r["errors"].values())
        memory = " | ".join(" ".join(f"{w[k]:.0f}" for w in r["memory"])
                            for k in ("hwm_mb", "pss_mb", "private_mb"))
        print(f"{number:>5} {name:<15} {r['ok']:>9} {r['rps']:>8.0f} {r['p50']:>7.2f} "
              f"{r['p99']:>7.2f} {errors:>7}   {memory}")
        if r["errors"]:
            print(f"      errors: {r['errors']}")
        print(f"{'':>5} {'':<15} CPU per request, ms: {cpu_line(r['cpu'])}; "
              f"steal (the host's other guests) {100 * r['steal']:.0f}% of the cores")
        served = r["served"]
        print(f"{'':>5} {'':<15} in a worker (access log), ms: p50 {served['p50']:.2f}, "
              f"p99 {served['p99']:.2f}; the rest of the latency (queue, client): "
              f"{r['mean'] - served['mean']:.2f} on average")
    print(f"{'':>5} CalfLine / trivial: {ratio(results):.3f}x")


def cpu_line(cpu: dict[str, float]) -> str:
    """CPU per request by kind of process; PostgreSQL's only when a server here ran."""
    return ", ".join(f"{kind} {ms:.3f}" for kind, ms in cpu.items()
                     if kind != "PostgreSQL" or ms)


def ratio(results: dict[str, dict[str, Any]]) -> float:
    """CalfLine's requests per second over the trivial endpoint's, in one round."""
    trivial = results[TRIVIAL]["rps"]
    return float(results[CALFLINE]["rps"] / trivial) if trivial else float("nan")


def print_summary(rounds: list[dict[str, dict[str, Any]]]) -> None:
    """The medians over the rounds, against the issue's goals."""
    ours = [r[CALFLINE] for r in rounds]
    ratios = [ratio(r) for r in rounds]
    p99s = [r["p99"] for r in ours]
    errors = sum(sum(r["errors"].values()) for r in ours)
    peak = max((w["hwm_mb"] for r in ours for w in r["memory"]), default=float("nan"))
    pss = max((w["pss_mb"] for r in ours for w in r["memory"]), default=float("nan"))
    for name in (TRIVIAL, CALFLINE):
        medians = {kind: statistics.median(r[name]["cpu"][kind] for r in rounds)
                   for kind in rounds[0][name]["cpu"]}
        steal = statistics.median(r[name]["steal"] for r in rounds)
        print(f"{name:<15} median CPU per request, ms: {cpu_line(medians)}; "
              f"median steal {100 * steal:.0f}%")
    print(f"CalfLine / trivial, median of {len(rounds)} rounds: "
          f"{statistics.median(ratios):.3f}x the requests per second (goal >= 0.35; rounds "
          + ", ".join(f"{x:.3f}" for x in ratios)
          + f"); p99 {statistics.median(p99s):.2f} ms (goal < 25; worst round "
          f"{max(p99s):.2f}); errors {errors} (goal 0); per worker {peak:.0f} MB peak RSS, "
          f"{pss:.0f} MB PSS (goal < 100)")


def main() -> int:
    """Run both apps under the same load, round after round, and print the figures."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=20_000, help="measured requests per app")
    parser.add_argument("--warmup", type=int, default=400, help="unmeasured requests first")
    parser.add_argument("--concurrency", type=int, default=16)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--rounds", type=int, default=3,
                        help="runs of each app, alternating which goes first; medians reported")
    parser.add_argument("--database-url", default="",
                        help="the store's DATABASE_URL (default: a fresh SQLite file each "
                             "round); its tables get every round's rows")
    parser.add_argument("--threads", type=int, default=0,
                        help="CALFLINE_THREADS for both apps (default: the config's)")
    parser.add_argument("--duration", type=float, default=60.0,
                        help="stop each measured run after this many seconds")
    args = parser.parse_args()
    fit_model_if_stale()
    print(machine())
    threads = f", {args.threads or 'the configured'} threads each"
    print(f"gunicorn -c deploy/gunicorn.conf.py, {args.workers} workers{threads}; "
          f"{args.concurrency} connections from bench/loadgen.py; up to {args.requests} signed "
          f"POST /sms per app after {args.warmup} warm-up, at most {args.duration:.0f} s each; "
          f"{args.rounds} rounds; store: {args.database_url or 'a fresh SQLite file'}")
    rounds: list[dict[str, dict[str, Any]]] = []
    with tempfile.TemporaryDirectory(prefix="calfline-bench-") as tmp:
        logdir = Path(tmp)
        base_env = {k: v for k, v in os.environ.items()
                    if not k.startswith(("CALFLINE_", "TWILIO_", "DATABASE_URL"))}
        if args.threads:
            base_env["CALFLINE_THREADS"] = str(args.threads)
        print(f"{'round':>5} {'':<15} {'requests':>9} {'req/s':>8} {'p50 ms':>7} {'p99 ms':>7} "
              f"{'errors':>7}   per worker MB: peak RSS (VmHWM) | PSS | private")
        for number in range(1, args.rounds + 1):
            envs = {TRIVIAL: ("bench.trivial_app:app", base_env),
                    CALFLINE: ("wsgi:app", calfline_env(base_env, args, logdir, number))}
            # The machine's speed drifts: alternate which app goes first.
            order = [TRIVIAL, CALFLINE] if number % 2 else [CALFLINE, TRIVIAL]
            results = {name: load(envs[name][0], args, envs[name][1], logdir) for name in order}
            rounds.append({name: results[name] for name in (TRIVIAL, CALFLINE)})
            print_round(number, rounds[-1])
    print_summary(rounds)
    return 0


def calfline_env(base_env: dict[str, str], args: argparse.Namespace, logdir: Path,
                 number: int) -> dict[str, str]:
    """CalfLine's environment for one round: signed webhooks, its own SQLite file."""
    return {
        **base_env,
        "TWILIO_AUTH_TOKEN": TOKEN,
        "DATABASE_URL": args.database_url or f"sqlite:///{logdir / f'bench-{number}.sqlite3'}",
        "CALFLINE_HASH_SECRET": "calfline-bench-hash-secret",  # a reused database keeps it
        "CALFLINE_SECRET_KEY": secrets.token_hex(16),
        # All the load comes from one address, which is the flood the per-IP
        # limit stops, so it is switched off (a blank list); raising it instead
        # would measure limits' moving window, whose list of hits grows with the
        # limit. The per-sender limit stays as shipped: ~1,000 senders send ~20 each.
        "CALFLINE_RATELIMIT_PER_IP": " ",
    }


if __name__ == "__main__":
    sys.exit(main())
