"""Language: each conversation keeps the language it is answered in; each message its own.

Revision ID: 0005_language
Revises: 0004_audit_dashboard
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0005_language"
down_revision = "0004_audit_dashboard"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: conversations from before this revision have no language yet and
    # get the number's default on their next message.
    with op.batch_alter_table("conversations") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))
    with op.batch_alter_table("messages") as batch:
        batch.add_column(sa.Column("language", sa.String(8), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("language")
    with op.batch_alter_table("conversations") as batch:
        batch.drop_column("language")
