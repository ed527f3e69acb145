"""`calfline` subcommands for clinic set-up: API keys, staff passwords, escalation worker."""

from __future__ import annotations

import argparse
import getpass
from collections.abc import Callable
from typing import TextIO

from werkzeug.security import generate_password_hash

from responder.frontdesk.clinics import hash_api_key, new_api_key


def cmd_clinic_key(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Make a new API key: the key for the clinic, the hash for the clinics file."""
    key = stdin.readline().strip() if args.stdin else new_api_key()
    if not key:
        stdout.write("no key on stdin\n")
        return 2
    if not args.stdin:
        stdout.write(f"key: {key}\n")
    stdout.write(f"hash: {hash_api_key(key)}\n")
    return 0


def cmd_password_hash(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Hash a staff password (read without echo, or from stdin) for the clinics file."""
    password = getpass.getpass("password: ") if stdin.isatty() else stdin.readline().rstrip("\n")
    if len(password) < 10:
        stdout.write("refused: use at least 10 characters\n")
        return 2
    stdout.write(generate_password_hash(password) + "\n")
    return 0


def cmd_escalations(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Deliver queued clinic notifications in the foreground (with ESCALATION_WORKER=off)."""
    import threading

    from responder import create_app
    from responder.frontdesk.escalation import run_worker

    app = create_app({"ESCALATION_WORKER": "off"})
    stdout.write("delivering clinic escalations; Ctrl-C to stop\n")
    stdout.flush()
    run_worker(app, threading.Event())
    return 0


def add_frontdesk_commands(sub: argparse._SubParsersAction[argparse.ArgumentParser]) -> None:
    """Describe the front-desk subcommands on the `calfline` parser."""
    key = sub.add_parser("clinic-key", help="make a clinic API key and the hash to store")
    key.add_argument("--stdin", action="store_true", help="hash a key read from stdin instead")
    sub.add_parser("password-hash", help="hash a staff password for the clinics file")
    sub.add_parser("escalations", help="deliver queued clinic notifications, re-send "
                   "unacknowledged urgent ones, end stale take-overs (worker process)")


FRONTDESK_COMMANDS: dict[str, Callable[..., int]] = {
    "clinic-key": cmd_clinic_key,
    "password-hash": cmd_password_hash,
    "escalations": cmd_escalations,
}
