"""status writes touch less: the status events' redundant wamid index goes, and the message
log leaves room on each page for its rows' status changes (PostgreSQL)

Every delivery status inserts a status event and moves its message forward. The index on
status_event.wamid duplicated the leading column of the (wamid, status) unique key, which
answers the same lookups; each event wrote both. A message changes status up to three times
(sent, delivered, read) and no index covers its status, so with free space on its page
PostgreSQL updates it in place instead of writing a new version into every index.

Revision ID: c5e9a7d3b2f4
Revises: 7c41d9e2b6a3
Create Date: 2026-11-30 17:55:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "c5e9a7d3b2f4"
down_revision: str | None = "7c41d9e2b6a3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE_FILLFACTOR = 85  # storage.models.Message says the same


def upgrade() -> None:
    with op.batch_alter_table("status_event") as batch_op:
        batch_op.drop_index("ix_status_event_wamid")
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE message SET (fillfactor = {MESSAGE_FILLFACTOR})")


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute("ALTER TABLE message RESET (fillfactor)")
    with op.batch_alter_table("status_event") as batch_op:
        batch_op.create_index("ix_status_event_wamid", ["wamid"], unique=False)
