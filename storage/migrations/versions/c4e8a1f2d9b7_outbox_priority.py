"""outbox priority: answers to people before business sends

Revision ID: c4e8a1f2d9b7
Revises: 11a375a89fda
Create Date: 2026-11-29 22:05:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "c4e8a1f2d9b7"
down_revision: str | None = "11a375a89fda"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("priority", sa.SmallInteger(), server_default="0", nullable=False)
        )
        batch_op.create_index("ix_outbox_claim_order", ["priority", "due_at", "id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("outbox", schema=None) as batch_op:
        batch_op.drop_index("ix_outbox_claim_order")
        batch_op.drop_column("priority")
