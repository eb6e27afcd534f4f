"""index what retention prunes: status events by arrival, idempotency records by age

Revision ID: e2f6c8d14a3b
Revises: d7b3e5a90c41
Create Date: 2026-11-29 22:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e2f6c8d14a3b"
down_revision: str | None = "d7b3e5a90c41"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_status_event_received_at"), ["received_at"])
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_idempotency_record_created_at"), ["created_at"])


def downgrade() -> None:
    with op.batch_alter_table("idempotency_record", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_idempotency_record_created_at"))
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_status_event_received_at"))
