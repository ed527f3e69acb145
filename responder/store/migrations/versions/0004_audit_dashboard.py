"""Audit trail (append-only, guarded by triggers) and what the dashboard needs per message.

Revision ID: 0004_audit_dashboard
Revises: 0002 (re-chained after 0003_frontdesk_workflow at merge)
Create Date: 2026-11-30

The triggers make `audit_events` append-only in the database itself (see
responder/store/audit_tables.py): no UPDATE, no TRUNCATE, and a DELETE only of
rows older than the latest `audit_purges.cutoff`; `audit_purges` refuses
UPDATE and DELETE. Both dialects store the times as the same column type, so
the comparison in the DELETE trigger is between like values (SQLite: the
same ISO text format SQLAlchemy writes, which sorts as time does).
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004_audit_dashboard"
down_revision = "0003_frontdesk_workflow"
branch_labels = None
depends_on = None

# Plain types here, not responder.models': a migration must not change when the models do.
WHEN = sa.DateTime(timezone=True)
REFUSED = "audit trail is append-only"

SQLITE_TRIGGERS = (
    f"""CREATE TRIGGER audit_events_no_update BEFORE UPDATE ON audit_events
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_events_no_delete BEFORE DELETE ON audit_events
    WHEN OLD.at >= COALESCE((SELECT cutoff FROM audit_purges ORDER BY id DESC LIMIT 1), '')
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: DELETE only below a recorded purge cutoff'); END""",
    f"""CREATE TRIGGER audit_purges_no_update BEFORE UPDATE ON audit_purges
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: UPDATE refused'); END""",
    f"""CREATE TRIGGER audit_purges_no_delete BEFORE DELETE ON audit_purges
    BEGIN SELECT RAISE(ABORT, '{REFUSED}: DELETE refused'); END""",
)
SQLITE_DROPS = ("audit_events_no_update", "audit_events_no_delete", "audit_purges_no_update",
                "audit_purges_no_delete")

# Statement-level TRUNCATE triggers have no OLD row: the IFs are nested so OLD is
# read only for a row-level DELETE.
PG_FUNCTION = f"""CREATE FUNCTION calfline_audit_append_only() RETURNS trigger
LANGUAGE plpgsql AS $$
BEGIN
  IF TG_OP = 'DELETE' AND TG_TABLE_NAME = 'audit_events' AND TG_LEVEL = 'ROW' THEN
    IF OLD.at < (SELECT cutoff FROM audit_purges ORDER BY id DESC LIMIT 1) THEN
      RETURN OLD;
    END IF;
  END IF;
  RAISE EXCEPTION '{REFUSED}: % on % refused', TG_OP, TG_TABLE_NAME;
END $$"""
PG_TRIGGERS = (
    """CREATE TRIGGER audit_events_append_only BEFORE UPDATE OR DELETE ON audit_events
    FOR EACH ROW EXECUTE PROCEDURE calfline_audit_append_only()""",
    """CREATE TRIGGER audit_events_no_truncate BEFORE TRUNCATE ON audit_events
    FOR EACH STATEMENT EXECUTE PROCEDURE calfline_audit_append_only()""",
    """CREATE TRIGGER audit_purges_append_only BEFORE UPDATE OR DELETE ON audit_purges
    FOR EACH ROW EXECUTE PROCEDURE calfline_audit_append_only()""",
    """CREATE TRIGGER audit_purges_no_truncate BEFORE TRUNCATE ON audit_purges
    FOR EACH STATEMENT EXECUTE PROCEDURE calfline_audit_append_only()""",
)


def upgrade() -> None:
    op.add_column("messages", sa.Column("care", sa.String(16), nullable=True))
    op.add_column("messages", sa.Column("check_answer", sa.String(3), nullable=True))
    op.create_table(
        "audit_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("clinic_id", sa.String(40), nullable=False),
        sa.Column("actor", sa.String(64), nullable=False),
        sa.Column("action", sa.String(40), nullable=False),
        sa.Column("subject", sa.String(128), nullable=False),
        sa.Column("detail", sa.String(255), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_events"),
    )
    op.create_index("ix_audit_events_clinic_id_at", "audit_events", ["clinic_id", "at"])
    op.create_index("ix_audit_events_at", "audit_events", ["at"])
    op.create_table(
        "audit_purges",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", WHEN, nullable=False),
        sa.Column("cutoff", WHEN, nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_audit_purges"),
    )
    if op.get_bind().dialect.name == "postgresql":
        op.execute(PG_FUNCTION)
        for statement in PG_TRIGGERS:
            op.execute(statement)
    else:
        for statement in SQLITE_TRIGGERS:
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.drop_table("audit_purges")  # drops its triggers with it
        op.drop_table("audit_events")
        op.execute("DROP FUNCTION calfline_audit_append_only()")
    else:
        for name in SQLITE_DROPS:
            op.execute(f"DROP TRIGGER {name}")
        op.drop_table("audit_purges")
        op.drop_table("audit_events")
    with op.batch_alter_table("messages") as batch:
        batch.drop_column("check_answer")
        batch.drop_column("care")
