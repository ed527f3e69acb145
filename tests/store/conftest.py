"""Fixtures shared by the store's tests."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from responder.store.conversation_store import ConversationStore
from tests.databases import sqlite_url


@pytest.fixture
def inline_store(tmp_path: Path) -> Iterator[ConversationStore]:
    """A SQLite file's store with a 0.3 s limit, its webhook work run inline."""
    opened = ConversationStore.open(sqlite_url(tmp_path), "inline-store-test-secret",
                                    timeout=0.3)
    opened.guard.inline = True  # as the web app sets it with the spool beside the file
    yield opened
    opened.close()
