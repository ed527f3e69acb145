"""Alembic migrations of the conversation store, run at start-up (upgrade head)."""
