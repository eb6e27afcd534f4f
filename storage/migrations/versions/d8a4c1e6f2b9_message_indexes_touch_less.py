"""message indexes touch less: the contact's messages are found by the (contact, time) index
alone, and the index of edited messages holds only edits

Every message written, and every status change PostgreSQL cannot make in place, writes an
entry into each index of the message log. ix_message_contact_id duplicated the leading column
of ix_message_contact_time, which answers the same lookups (a contact's messages, the cascade
of an erasure). ix_message_original_wamid held an entry for every message, though only a
customer's edit or deletion names the message it changes; it now holds those alone, and a
lookup by the original's id finds them as before.

Revision ID: d8a4c1e6f2b9
Revises: c5e9a7d3b2f4
Create Date: 2026-12-01 02:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "d8a4c1e6f2b9"
down_revision: str | None = "c5e9a7d3b2f4"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

EDITS = sa.text("original_wamid IS NOT NULL")


def upgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_index("ix_message_contact_id")
        batch_op.drop_index("ix_message_original_wamid")
        batch_op.create_index(
            "ix_message_original_wamid",
            ["original_wamid"],
            postgresql_where=EDITS,
            sqlite_where=EDITS,
        )


def downgrade() -> None:
    with op.batch_alter_table("message") as batch_op:
        batch_op.drop_index("ix_message_original_wamid")
        batch_op.create_index("ix_message_original_wamid", ["original_wamid"])
        batch_op.create_index("ix_message_contact_id", ["contact_id"])
