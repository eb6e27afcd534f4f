"""message pages keep room for a batch of statuses: fillfactor 70 instead of 85 (PostgreSQL)

Messages sent together sit together on the table's pages, and their statuses come back
together, up to a hundred to a body, all moved in one statement. A status change is made in
place (no new entry in the message indexes) only while the row's page has room for the new
version, and the versions it replaces cannot be cleared before the statement ends. With 15 %
of each page free, a body of 100 statuses of consecutive messages updated 6,521 of 30,000 rows
in place and its UPDATE cost the backend 1.39 ms; with 30 % free, 14,200 and 1.09 ms (the
table 15 → 17 MB). The setting applies to pages written from now on; existing pages keep
theirs until the table is rewritten.

Revision ID: e5c2b7a9d410
Revises: d8a4c1e6f2b9
Create Date: 2026-12-01 03:00:00.000000
"""

from collections.abc import Sequence

from alembic import op

revision: str = "e5c2b7a9d410"
down_revision: str | None = "d8a4c1e6f2b9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

MESSAGE_FILLFACTOR = 70  # storage.models.Message says the same
BEFORE = 85


def _fillfactor(value: int) -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(f"ALTER TABLE message SET (fillfactor = {value})")


def upgrade() -> None:
    _fillfactor(MESSAGE_FILLFACTOR)


def downgrade() -> None:
    _fillfactor(BEFORE)
