"""the outbox wakes the dispatchers itself: a statement-level NOTIFY trigger on PostgreSQL

Every INSERT into the outbox notifies the listening dispatchers (delivered at commit, never for a
rollback), so the queueing transaction spends no round trip of its own on it.

Revision ID: a6d2f0c9e7b1
Revises: efae7f5655fd
Create Date: 2026-11-30 17:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "a6d2f0c9e7b1"
down_revision: str | None = "efae7f5655fd"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The channel storage.wakeup listens on.
CREATE_FUNCTION = """
CREATE FUNCTION outbox_wake_dispatchers() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('optin_outbox', '');
    RETURN NULL;
END $$
"""
CREATE_TRIGGER = """
CREATE TRIGGER outbox_wake_dispatchers AFTER INSERT ON outbox
FOR EACH STATEMENT EXECUTE FUNCTION outbox_wake_dispatchers()
"""


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # one dispatcher, in the process that queues: woken in memory
    op.execute(CREATE_FUNCTION)
    op.execute(CREATE_TRIGGER)


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute("DROP TRIGGER outbox_wake_dispatchers ON outbox")
    op.execute("DROP FUNCTION outbox_wake_dispatchers()")
