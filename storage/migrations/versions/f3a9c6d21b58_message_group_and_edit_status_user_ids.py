"""message group and original, status recipient user id and group participant, and the
question the dialogue last said it could not read

Revision ID: f3a9c6d21b58
Revises: 8725895095c2
Create Date: 2026-11-30 11:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "f3a9c6d21b58"
down_revision: str | None = "8725895095c2"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("dialogue", schema=None) as batch_op:
        batch_op.add_column(sa.Column("unreadable_for", sa.String(length=96), nullable=True))
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.add_column(sa.Column("group_id", sa.String(length=256), nullable=True))
        batch_op.add_column(sa.Column("original_wamid", sa.String(length=256), nullable=True))
        batch_op.create_index("ix_message_original_wamid", ["original_wamid"], unique=False)
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.add_column(sa.Column("recipient_user_id", sa.String(length=160), nullable=True))
        batch_op.add_column(
            sa.Column("recipient_participant_id", sa.String(length=160), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.drop_column("recipient_participant_id")
        batch_op.drop_column("recipient_user_id")
    with op.batch_alter_table("message", schema=None) as batch_op:
        batch_op.drop_index("ix_message_original_wamid")
        batch_op.drop_column("original_wamid")
        batch_op.drop_column("group_id")
    with op.batch_alter_table("dialogue", schema=None) as batch_op:
        batch_op.drop_column("unreadable_for")
