"""The conversation store: the database, its tables and migrations, and what is read and written.

SQLAlchemy on SQLite or PostgreSQL, Alembic migrations run at start-up
(migrations/), every message and reply with opt-outs and context
(`ConversationStore`), the escalation outbox's table, the staff console's
queries and retention (`ConversationStore.purge`). When the database fails:
a time limit and circuit breaker for each webhook's work (`StoreGuard`), the
spool of turns answered meanwhile (`TurnSpool`, replayed by
`ConversationStore.replay`) and a local copy of the opt-out list (`OptOutCopy`).
The audit trail (`audit.record`, append-only: audit_tables.py) and the clinic
dashboard's figures (`clinic_figures`, `urgent_ack_times`) are here too.
Builds on responder.dialogue's `ConversationState` and `Turn`; no Flask beyond
`install_store(app)`.
"""

from responder.store import audit
from responder.store.audit_tables import AuditEvent, AuditPurge
from responder.store.clinic_conversations import (
    FLAG_INTENTS,
    ConversationRow,
    clinic_conversation,
    clinic_conversations,
)
from responder.store.clinic_figures import ClinicFigures, Window, clinic_figures
from responder.store.conversation_store import (
    DEV_HASH_SECRET,
    ConversationStore,
    ConversationSummary,
    Inbound,
    MessageRecord,
    PurgeCount,
    SenderHasher,
    StoredReply,
    idempotency_key,
    install_store,
    utcnow,
)
from responder.store.database import database_url, migrate, open_engine
from responder.store.escalation_outbox import Escalation
from responder.store.guard import StoreGuard
from responder.store.inbox_figures import AckTimes, urgent_ack_times
from responder.store.models import Base, Conversation, Message, Meta
from responder.store.optout_copy import OptOutCopy
from responder.store.spool import TurnSpool
from responder.store.turns import SpooledTurn

__all__ = [
    "DEV_HASH_SECRET",
    "FLAG_INTENTS",
    "AckTimes",
    "AuditEvent",
    "AuditPurge",
    "Base",
    "ClinicFigures",
    "Conversation",
    "ConversationRow",
    "ConversationStore",
    "ConversationSummary",
    "Escalation",
    "Inbound",
    "Message",
    "MessageRecord",
    "Meta",
    "OptOutCopy",
    "PurgeCount",
    "SenderHasher",
    "SpooledTurn",
    "StoreGuard",
    "StoredReply",
    "TurnSpool",
    "Window",
    "audit",
    "clinic_figures",
    "clinic_conversation",
    "clinic_conversations",
    "database_url",
    "idempotency_key",
    "install_store",
    "migrate",
    "open_engine",
    "urgent_ack_times",
    "utcnow",
]
