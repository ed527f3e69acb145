"""Front desk workflow: the inbox, delivery reports, conversations taken over by staff.

Revision ID: 0003_frontdesk_workflow
Revises: 0002
Create Date: 2026-11-30
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0003_frontdesk_workflow"
down_revision = "0002"
branch_labels = None
depends_on = None

# Plain types here, not responder.models': a migration must not change when the models do.
WHEN = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "inbox_items",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("clinic_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(16), nullable=False),
        sa.Column("urgent", sa.Boolean(), nullable=False),
        sa.Column("event_key", sa.String(64), nullable=False),
        sa.Column("conversation_id", sa.Integer(), nullable=True),
        sa.Column("channel", sa.String(8), nullable=False),
        sa.Column("our_number", sa.String(64), nullable=False),
        sa.Column("patient_number", sa.String(64), nullable=True),
        sa.Column("patient_last4", sa.String(4), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_at", WHEN, nullable=False),
        sa.Column("acknowledged_at", WHEN, nullable=True),
        sa.Column("acknowledged_by", sa.String(64), nullable=True),
        sa.Column("closed_at", WHEN, nullable=True),
        sa.Column("closed_by", sa.String(64), nullable=True),
        sa.Column("outcome", sa.String(16), nullable=True),
        sa.Column("resent_at", WHEN, nullable=True),
        sa.Column("alert_failed_at", WHEN, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_inbox_items"),
        sa.UniqueConstraint("event_key", "kind", name="uq_inbox_items_event_key_kind"),
    )
    op.create_index("ix_inbox_items_clinic_id_closed_at_created_at", "inbox_items",
                    ["clinic_id", "closed_at", "created_at"])
    op.create_index("ix_inbox_items_urgent_acknowledged_at_resent_at", "inbox_items",
                    ["urgent", "acknowledged_at", "resent_at"])
    op.create_table(
        "message_statuses",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("message_sid", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("error_code", sa.String(16), nullable=True),
        sa.Column("created_at", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_message_statuses"),
        sa.UniqueConstraint("message_sid", "status", name="uq_message_statuses_message_sid_status"),
    )
    # ADD COLUMN of a nullable column: plain ALTER TABLE on both SQLite and PostgreSQL.
    for name, kind in (("held_by", sa.String(64)), ("held_at", WHEN),
                       ("held_reply_at", WHEN), ("held_number", sa.String(64))):
        op.add_column("conversations", sa.Column(name, kind, nullable=True))
    op.add_column("messages", sa.Column("staff_user", sa.String(64), nullable=True))
    op.add_column("escalations", sa.Column("twilio_sid", sa.String(64), nullable=True))
    op.create_index("ix_escalations_twilio_sid", "escalations", ["twilio_sid"])


def downgrade() -> None:
    op.drop_index("ix_escalations_twilio_sid", table_name="escalations")
    with op.batch_alter_table("escalations") as batch:
        batch.drop_column("twilio_sid")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("staff_user")
    with op.batch_alter_table("conversations") as batch:
        for name in ("held_number", "held_reply_at", "held_at", "held_by"):
            batch.drop_column(name)
    op.drop_table("message_statuses")
    op.drop_index("ix_inbox_items_urgent_acknowledged_at_resent_at", table_name="inbox_items")
    op.drop_index("ix_inbox_items_clinic_id_closed_at_created_at", table_name="inbox_items")
    op.drop_table("inbox_items")
