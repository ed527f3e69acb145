"""Escalation outbox: notifications owed to clinics, delivered by a background worker.

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-26
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

# Plain types here, not responder.models': a migration must not change when the models do.
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "escalations",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_key", sa.String(64), nullable=False),
        sa.Column("target", sa.String(8), nullable=False),
        sa.Column("clinic_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("intent", sa.String(64), nullable=False),
        sa.Column("our_number", sa.String(64), nullable=False),
        sa.Column("patient_number", sa.String(64), nullable=True),
        sa.Column("patient_last4", sa.String(4), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("status", sa.String(8), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", WHEN, nullable=False),
        sa.Column("claimed_until", WHEN, nullable=True),
        sa.Column("sent_at", WHEN, nullable=True),
        sa.Column("last_error", sa.String(255), nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_escalations"),
        sa.UniqueConstraint("event_key", "target", name="uq_escalations_event_key_target"),
    )
    op.create_index(
        "ix_escalations_status_next_attempt_at", "escalations", ["status", "next_attempt_at"]
    )


def downgrade() -> None:
    op.drop_index("ix_escalations_status_next_attempt_at", table_name="escalations")
    op.drop_table("escalations")
