"""Conversation store: conversations (opt-out, context), messages, meta.

Revision ID: 0001
Revises:
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Plain types here, not responder.models': a migration must not change when the models do.
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "calfline_meta",
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("value", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("key", name="pk_calfline_meta"),
    )
    op.create_table(
        "conversations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("sender_hash", sa.String(64), nullable=False),
        sa.Column("sender_last4", sa.String(4), nullable=False),
        sa.Column("our_number", sa.String(64), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("updated_at", WHEN, nullable=False),
        sa.Column("opted_out", sa.Boolean(), nullable=False),
        sa.Column("opted_out_at", WHEN, nullable=True),
        sa.Column("last_intent", sa.String(64), nullable=True),
        sa.Column("clarify_first", sa.String(64), nullable=True),
        sa.Column("clarify_second", sa.String(64), nullable=True),
        sa.Column("context_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_conversations"),
        sa.UniqueConstraint(
            "sender_hash", "our_number", name="uq_conversations_sender_hash_our_number"
        ),
    )
    op.create_index(
        "ix_conversations_our_number_updated_at", "conversations", ["our_number", "updated_at"]
    )
    op.create_table(
        "messages",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=False),
        sa.Column("direction", sa.String(3), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("intent", sa.String(64), nullable=True),
        sa.Column("confidence", sa.Float(), nullable=True),
        sa.Column("template_id", sa.String(128), nullable=True),
        sa.Column("twilio_sid", sa.String(64), nullable=True),
        sa.Column("dedupe_key", sa.String(64), nullable=True),
        sa.Column("reply_to_id", sa.Integer(), nullable=True),
        sa.ForeignKeyConstraint(
            ["conversation_id"], ["conversations.id"],
            name="fk_messages_conversation_id_conversations", ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["reply_to_id"], ["messages.id"],
            name="fk_messages_reply_to_id_messages", ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name="pk_messages"),
        sa.UniqueConstraint("dedupe_key", name="uq_messages_dedupe_key"),
        sa.UniqueConstraint("reply_to_id", name="uq_messages_reply_to_id"),
    )
    op.create_index(
        "ix_messages_conversation_id_created_at", "messages", ["conversation_id", "created_at"]
    )
    op.create_index("ix_messages_created_at", "messages", ["created_at"])


def downgrade() -> None:
    op.drop_table("messages")
    op.drop_table("conversations")
    op.drop_table("calfline_meta")
