"""`calfline purge --older-than DAYS`: the retention command for the conversation store.

Audit rows have their own, longer retention (CALFLINE_AUDIT_RETENTION_DAYS), so
purging messages often never thins the record of who did what.
"""

from __future__ import annotations

import argparse
from datetime import timedelta
from typing import Any, TextIO

from responder.errors import ConfigError
from responder.web.config import from_environment


def cmd_purge(args: argparse.Namespace, stdin: TextIO, stdout: TextIO) -> int:
    """Delete messages older than DAYS; opted-out numbers stay opted out."""
    from flask import Flask

    from responder.store import audit
    from responder.store.conversation_store import DEV_HASH_SECRET, ConversationStore
    from responder.store.database import database_url

    if args.older_than < 0:
        raise ConfigError(f"--older-than {args.older_than}: must be 0 or more days")
    config = from_environment()
    audit_days = float(config["AUDIT_RETENTION_DAYS"])
    if not audit_days >= 1:  # also refuses NaN
        raise ConfigError(f"CALFLINE_AUDIT_RETENTION_DAYS={audit_days:g}: must be 1 or more")
    # The same default file as the web app: Flask's instance folder for this package.
    url = database_url(config["DATABASE_URL"], Flask("responder").instance_path)
    store = ConversationStore.open(url, config["HASH_SECRET"] or DEV_HASH_SECRET)
    try:
        count = store.purge(timedelta(days=args.older_than))
        audit_rows = audit.purge(store.engine, timedelta(days=audit_days))
    finally:
        store.close()
    print(f"purged {count.messages} messages and {count.conversations} conversations "
          f"older than {args.older_than:g} days", file=stdout)
    print(f"purged {audit_rows} audit rows older than {audit_days:g} days "
          f"(CALFLINE_AUDIT_RETENTION_DAYS)", file=stdout)
    return 0


def add_store_commands(sub: Any) -> None:
    """Add the store's subcommands to the `calfline` parser."""
    purge = sub.add_parser("purge", help="delete stored messages older than DAYS")
    purge.add_argument("--older-than", type=float, required=True, metavar="DAYS",
                       help="age in days; opt-outs are kept whatever their age; audit rows "
                            "are kept CALFLINE_AUDIT_RETENTION_DAYS (default 2190)")


STORE_COMMANDS = {"purge": cmd_purge}
