"""identity is the person: parent user id, a history of identifier changes, split contacts joined

A contact that first wrote by username only (a user id, no number) and later with its number
was kept as two contacts: the number's contact could not take a user id another contact held.
A stored inbound message carrying both proves they are one person; their conversations, ledger
rows and current consents are joined on the number's contact, the newer decision per category
staying in force, and the join is recorded in the new history table.

Revision ID: b4f201d6d5cb
Revises: e2f6c8d14a3b
Create Date: 2026-11-30 10:06:58.026371
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
import sqlmodel
from alembic import op

import storage.types

revision: str = "b4f201d6d5cb"
down_revision: str | None = "e2f6c8d14a3b"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

USER_ID_MAX = 160
_ID = sqlmodel.sql.sqltypes.AutoString

# The tables as this revision leaves them: a migration never follows later model changes.
_meta = sa.MetaData()
_time = storage.types.UTCDateTime(timezone=True)
contact = sa.Table(
    "contact",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("wa_id", _ID(32)),
    sa.Column("user_id", _ID(USER_ID_MAX)),
    sa.Column("name", _ID(256)),
    sa.Column("username", _ID(128)),
    sa.Column("country_code", _ID(8)),
    sa.Column("language", _ID(8)),
    sa.Column("created_at", _time),
    sa.Column("first_inbound_at", _time),
    sa.Column("last_inbound_at", _time),
    sa.Column("marketing_held_until", _time),
)
message = sa.Table(
    "message",
    _meta,
    sa.Column("id", _ID(32), primary_key=True),
    sa.Column("contact_id", sa.Integer),
    sa.Column("direction", _ID(3)),
    sa.Column("meta_timestamp", _time),
    sa.Column("raw", sa.JSON),
)
consent_event = sa.Table(
    "consent_event", _meta, sa.Column("id", sa.Integer), sa.Column("contact_id", sa.Integer)
)
consent = sa.Table(
    "consent",
    _meta,
    sa.Column("contact_id", sa.Integer, primary_key=True),
    sa.Column("category", _ID(32), primary_key=True),
    sa.Column("updated_at", _time),
)
dialogue = sa.Table(
    "dialogue",
    _meta,
    sa.Column("contact_id", sa.Integer, primary_key=True),
    sa.Column("updated_at", _time),
)
identity_change = sa.Table(
    "identity_change",
    _meta,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("contact_id", sa.Integer),
    sa.Column("field", _ID(16)),
    sa.Column("previous", _ID(USER_ID_MAX)),
    sa.Column("current", _ID(USER_ID_MAX)),
    sa.Column("reason", _ID(32)),
    sa.Column("occurred_at", _time),
    sa.Column("recorded_at", _time),
    sa.Column("wamid", _ID(256)),
    sa.Column("note", sa.Text),
)


def upgrade() -> None:
    op.create_table(
        "identity_change",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("contact_id", sa.Integer(), nullable=False),
        sa.Column("field", _ID(length=16), nullable=False),
        sa.Column("previous", _ID(length=USER_ID_MAX), nullable=True),
        sa.Column("current", _ID(length=USER_ID_MAX), nullable=True),
        sa.Column("reason", _ID(length=32), nullable=False),
        sa.Column("occurred_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("recorded_at", storage.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("wamid", _ID(length=256), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(["contact_id"], ["contact.id"], ondelete="CASCADE"),
        sa.PrimaryKeyConstraint("id"),
    )
    with op.batch_alter_table("identity_change", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_identity_change_contact_id"), ["contact_id"], unique=False
        )
        batch_op.create_index("ix_identity_change_previous", ["field", "previous"], unique=False)

    # A user id is a country code, a dot and up to 128 characters: 128 was too short.
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.add_column(sa.Column("parent_user_id", _ID(length=USER_ID_MAX), nullable=True))
        batch_op.alter_column(
            "user_id",
            existing_type=sa.VARCHAR(length=128),
            type_=_ID(length=USER_ID_MAX),
            existing_nullable=True,
        )
        batch_op.create_index(
            batch_op.f("ix_contact_parent_user_id"), ["parent_user_id"], unique=False
        )
    with op.batch_alter_table("preference_event", schema=None) as batch_op:
        batch_op.alter_column(
            "contact_key",
            existing_type=sa.VARCHAR(length=128),
            type_=_ID(length=USER_ID_MAX),
            existing_nullable=False,
        )
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.alter_column(
            "recipient_id",
            existing_type=sa.VARCHAR(length=128),
            type_=_ID(length=USER_ID_MAX),
            existing_nullable=True,
        )

    join_split_contacts(op.get_bind())


def downgrade() -> None:
    # Joined contacts stay joined: splitting a person again would guess which consent was whose.
    with op.batch_alter_table("status_event", schema=None) as batch_op:
        batch_op.alter_column(
            "recipient_id",
            existing_type=_ID(length=USER_ID_MAX),
            type_=sa.VARCHAR(length=128),
            existing_nullable=True,
        )
    with op.batch_alter_table("preference_event", schema=None) as batch_op:
        batch_op.alter_column(
            "contact_key",
            existing_type=_ID(length=USER_ID_MAX),
            type_=sa.VARCHAR(length=128),
            existing_nullable=False,
        )
    with op.batch_alter_table("contact", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_contact_parent_user_id"))
        batch_op.alter_column(
            "user_id",
            existing_type=_ID(length=USER_ID_MAX),
            type_=sa.VARCHAR(length=128),
            existing_nullable=True,
        )
        batch_op.drop_column("parent_user_id")
    with op.batch_alter_table("identity_change", schema=None) as batch_op:
        batch_op.drop_index("ix_identity_change_previous")
        batch_op.drop_index(batch_op.f("ix_identity_change_contact_id"))
    op.drop_table("identity_change")


# --- joining contacts that are one person -----------------------------------------------------


def join_split_contacts(connection: sa.Connection) -> int:
    """Join each user-id-only contact to the numbered contact whose stored message names both;
    how many were joined. Only contacts without a user id can have such a message (the old code
    stored it there, unable to give them the user id another contact held)."""
    by_user_id = dict(
        connection.execute(
            sa.select(contact.c.user_id, contact.c.id).where(
                contact.c.wa_id.is_(None), contact.c.user_id.is_not(None)
            )
        ).all()
    )
    if not by_user_id:
        return 0
    rows = connection.execute(
        sa.select(message.c.contact_id, message.c.raw, message.c.meta_timestamp, message.c.id)
        .join(contact, contact.c.id == message.c.contact_id)
        .where(
            message.c.direction == "in",
            contact.c.user_id.is_(None),
            contact.c.wa_id.is_not(None),
            sa.cast(message.c.raw, sa.Text).contains("from_user_id"),
        )
        .order_by(message.c.meta_timestamp)
    ).all()
    # Each pair once, with the first message that proves it.
    proof: dict[tuple[int, int], tuple[datetime, str]] = {}
    for numbered_id, raw, at, message_id in rows:
        user_id = raw.get("from_user_id") if isinstance(raw, dict) else None
        other = by_user_id.get(user_id) if isinstance(user_id, str) else None
        if other is not None:
            proof.setdefault((numbered_id, other), (at, message_id))
    numbered_count: dict[int, int] = {}
    other_count: dict[int, int] = {}
    for numbered_id, other in proof:
        numbered_count[numbered_id] = numbered_count.get(numbered_id, 0) + 1
        other_count[other] = other_count.get(other, 0) + 1
    joined = 0
    for (numbered_id, other), (at, message_id) in proof.items():
        if numbered_count[numbered_id] > 1 or other_count[other] > 1:
            continue  # not one to one: left for the person's next message to settle
        _join(connection, keep=numbered_id, other=other, at=at, message_id=message_id)
        joined += 1
    return joined


def _join(
    connection: sa.Connection, *, keep: int, other: int, at: datetime, message_id: str
) -> None:
    kept = connection.execute(sa.select(contact).where(contact.c.id == keep)).mappings().one()
    gone = connection.execute(sa.select(contact).where(contact.c.id == other)).mappings().one()
    for table in (message, consent_event):
        connection.execute(
            sa.update(table).where(table.c.contact_id == other).values(contact_id=keep)
        )
    _join_newest(connection, consent, keep, other, key=consent.c.category)
    _join_newest(connection, dialogue, keep, other, key=None)

    values: dict[str, Any] = {}
    for field in ("name", "username", "country_code", "language"):
        if kept[field] is None and gone[field] is not None:
            values[field] = gone[field]
    values["created_at"] = _earliest(kept["created_at"], gone["created_at"])
    values["first_inbound_at"] = _earliest(kept["first_inbound_at"], gone["first_inbound_at"])
    values["last_inbound_at"] = _latest(kept["last_inbound_at"], gone["last_inbound_at"])
    values["marketing_held_until"] = _latest(
        kept["marketing_held_until"], gone["marketing_held_until"]
    )
    # The unique user id moves: the other contact lets go of it first.
    connection.execute(sa.delete(contact).where(contact.c.id == other))
    connection.execute(
        sa.update(contact).where(contact.c.id == keep).values(user_id=gone["user_id"], **values)
    )
    connection.execute(
        sa.insert(identity_change).values(
            contact_id=keep,
            field="user_id",
            previous=None,
            current=gone["user_id"],
            reason="merged",
            occurred_at=at,
            recorded_at=datetime.now(UTC),
            wamid=None,
            note=f"joined at upgrade: stored message {message_id} named the number and this id",
        )
    )


def _join_newest(
    connection: sa.Connection, table: sa.Table, keep: int, other: int, *, key: Any
) -> None:
    """Move the other contact's rows over; where both have one, the newer stays in force."""
    columns = [table.c.updated_at] + ([key] if key is not None else [])
    theirs = connection.execute(sa.select(*columns).where(table.c.contact_id == other)).all()
    for row in theirs:
        same = table.c.contact_id == keep
        if key is not None:
            same = sa.and_(same, key == row[1])
        ours = connection.execute(sa.select(table.c.updated_at).where(same)).first()
        moved = table.c.contact_id == other
        if key is not None:
            moved = sa.and_(moved, key == row[1])
        if ours is not None and ours[0] >= row[0]:
            connection.execute(sa.delete(table).where(moved))
            continue
        if ours is not None:
            connection.execute(sa.delete(table).where(same))
        connection.execute(sa.update(table).where(moved).values(contact_id=keep))


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((t for t in (a, b) if t is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)
