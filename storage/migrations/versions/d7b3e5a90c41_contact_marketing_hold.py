"""contact marketing hold: Meta's 131049 per-user marketing limit

Revision ID: d7b3e5a90c41
Revises: c4e8a1f2d9b7
Create Date: 2026-11-29 21:50:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import storage.types

revision: str = "d7b3e5a90c41"
down_revision: str | None = "c4e8a1f2d9b7"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column(
                "marketing_held_until", storage.types.UTCDateTime(timezone=True), nullable=True
            )
        )


def downgrade() -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_column("marketing_held_until")
