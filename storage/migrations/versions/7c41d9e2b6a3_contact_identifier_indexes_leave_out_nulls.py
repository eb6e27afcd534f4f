"""indexes of the contact identifiers a contact may lack leave out NULLs

Revision ID: 7c41d9e2b6a3
Revises: a6d2f0c9e7b1
Create Date: 2026-11-30 16:40:00.000000

The indexes on contact.user_id (unique), parent_user_id and last_inbound_at held an entry for
every contact without one, so a contact created by number alone (a bulk import writes a
million) wrote three index entries, three WAL records, that no lookup could use. They now hold
only contacts that have the value: equality lookups find the same rows, and user ids stay
unique (NULLs never conflicted). Nothing reads last_inbound_at's index (the console's order,
newest inbound first with NULLs last, sorts); it is kept, partial, for queries of recent
contacts.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "7c41d9e2b6a3"
down_revision: str | None = "a6d2f0c9e7b1"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (column, unique)
INDEXED = (("user_id", True), ("parent_user_id", False), ("last_inbound_at", False))


def _indexes(partial: bool) -> None:
    with op.batch_alter_table("contact", schema=None) as batch_op:
        for column, unique in INDEXED:
            name = f"ix_contact_{column}"
            batch_op.drop_index(name)
            where = sa.text(f"{column} IS NOT NULL") if partial else None
            batch_op.create_index(
                name, [column], unique=unique, postgresql_where=where, sqlite_where=where
            )


def upgrade() -> None:
    _indexes(partial=True)


def downgrade() -> None:
    _indexes(partial=False)
