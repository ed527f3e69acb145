"""Conversations: drop the (our_number, updated_at) index, so a message updates its row in place.

Every inbound message sets its conversation's updated_at. With updated_at in an
index, PostgreSQL cannot make that a HOT update: each message wrote a new row
version plus an entry in each of the table's three indexes, and the old
versions stayed until a vacuum. Under bench/webhook_load.py (about 20 messages
from each of 997 senders) the table held 997 live rows and 19,645 dead ones
after one run on a server with autovacuum off; the planner, with no statistics
yet, read a sender's state through this index, our_number first, and walked
every conversation on the number. Without it 99.6% of the updates are HOT, dead
versions are pruned as pages are read, and the state read has one index to use.
PostgreSQL's CPU per webhook fell from 0.88-0.94 ms to 0.51-0.59 ms in process.

What it served: the console's conversation list, latest first, now sorts its
clinic's conversations (a scan and a top-N sort; bench/console_list.py has the
figures), and purge's idle test, a scan in a batch job.

Revision ID: 0006_conversation_row_in_place
Revises: 0005_language
Create Date: 2026-12-01
"""

from __future__ import annotations

from alembic import op

revision = "0006_conversation_row_in_place"
down_revision = "0005_language"
branch_labels = None
depends_on = None

INDEX = "ix_conversations_our_number_updated_at"


def upgrade() -> None:
    op.drop_index(INDEX, table_name="conversations")


def downgrade() -> None:
    op.create_index(INDEX, "conversations", ["our_number", "updated_at"])
