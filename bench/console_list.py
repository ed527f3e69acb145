"""Time the console's conversation list (latest first) at a clinic's scale, with and
without an index on (our_number, updated_at).

    python bench/console_list.py [--conversations 20000] [--numbers 4]
                                 [--database-url URL]

Migration 0006 dropped that index so that a message updates its conversation's row
in place (a HOT update on PostgreSQL); the list now sorts the clinic's rows. This
fills a fresh store (a temporary SQLite file, or --database-url, whose tables get
the rows) with conversations spread over several numbers, then times
clinic_conversations() for one number's latest 100: first as migrated, then with
the old index put back for comparison (and dropped again). Medians of 30 calls.
"""

from __future__ import annotations

import argparse
import platform
import random
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from sqlalchemy import Engine, insert, text  # noqa: E402

from responder.store.clinic_conversations import clinic_conversations  # noqa: E402
from responder.store.conversation_store import ConversationStore  # noqa: E402
from responder.store.models import Conversation  # noqa: E402

OLD_INDEX = "ix_conversations_our_number_updated_at"
CALLS = 30


def fill(engine: Engine, count: int, numbers: list[str], rng: random.Random) -> None:
    """Insert `count` conversations over `numbers`, last active over the past 90 days."""
    now = datetime.now(UTC)
    rows = []
    for i in range(count):
        updated = now - timedelta(seconds=rng.randrange(90 * 86400))
        rows.append({"sender_hash": f"{i:064x}", "sender_last4": f"{i % 10000:04d}",
                     "our_number": numbers[i % len(numbers)], "created_at": updated,
                     "updated_at": updated, "opted_out": False, "last_intent": "cramp_now"})
    with engine.begin() as connection:
        connection.execute(insert(Conversation), rows)
        if engine.dialect.name == "postgresql":
            connection.execute(text("ANALYZE conversations"))


def median_ms(engine: Engine, number: str) -> float:
    """Median milliseconds for one number's latest 100 conversations."""
    timings = []
    for _ in range(CALLS):
        start = time.perf_counter()
        listed = clinic_conversations(engine, [number], limit=100)
        timings.append((time.perf_counter() - start) * 1000)
        assert len(listed) == 100
    return statistics.median(timings)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--conversations", type=int, default=20_000)
    parser.add_argument("--numbers", type=int, default=4)
    parser.add_argument("--database-url", default="")
    args = parser.parse_args()
    numbers = [f"+1555000{7000 + i}" for i in range(args.numbers)]
    with tempfile.TemporaryDirectory(prefix="calfline-console-") as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'console.sqlite3'}"
        store = ConversationStore.open(url, "calfline-bench-hash-secret")
        engine = store.engine
        fill(engine, args.conversations, numbers, random.Random(7))
        print(f"{platform.python_version()}, {engine.dialect.name}, {args.conversations} "
              f"conversations over {args.numbers} numbers; latest 100 of one number, "
              f"median of {CALLS}")
        as_migrated = median_ms(engine, numbers[0])
        with engine.begin() as connection:
            connection.execute(text(
                f"CREATE INDEX {OLD_INDEX} ON conversations (our_number, updated_at)"))
            connection.execute(text("ANALYZE conversations"))
        indexed = median_ms(engine, numbers[0])
        with engine.begin() as connection:
            connection.execute(text(f"DROP INDEX {OLD_INDEX}"))
        store.close()
    print(f"without the index (as migrated): {as_migrated:.2f} ms")
    print(f"with the old index:              {indexed:.2f} ms  ({as_migrated / indexed:.1f}x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
