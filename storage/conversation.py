"""The conversation log: inbound messages stored once, read back in order; the stages a status
moves a message through (applied by storage.statuses)."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlmodel import Session, col, select

from storage.db import is_postgres
from storage.deferred import insert_row
from storage.json_rows import document, insert_rows
from storage.models import Message, new_id
from storage.types import utcnow
from storage.upsert import insert_ignoring, insert_ignoring_conflict

# Later stages win whatever order Meta delivers them in ("read" before "delivered" stays "read").
STATUS_RANK = {
    "received": 0,
    "queued": 0,
    "sent": 1,
    "delivered": 2,
    "failed": 3,
    "read": 4,
    "played": 5,
    "cancelled": 6,
}


def insert_inbound(
    session: Session,
    *,
    contact_id: int,
    wamid: str,
    phone_number_id: str | None,
    type: str,
    text: str | None,
    meta_timestamp: datetime,
    context_wamid: str | None,
    raw: dict[str, Any] | None,
    group_id: str | None = None,
    original_wamid: str | None = None,
) -> str | None:
    """Store an inbound message; its id, or None when this wamid was already stored."""
    values = _inbound(
        {
            "contact_id": contact_id,
            "wamid": wamid,
            "phone_number_id": phone_number_id,
            "type": type,
            "text": text,
            "meta_timestamp": meta_timestamp,
            "context_wamid": context_wamid,
            "group_id": group_id,
            "original_wamid": original_wamid,
            "raw": raw,
        }
    )
    return values["id"] if insert_ignoring_conflict(session, Message, values) else None


def insert_inbound_many(session: Session, rows: list[dict[str, Any]]) -> set[str]:
    """Store inbound messages (insert_inbound's keywords, one dict each) in one statement; the
    wamids stored now, leaving out those stored before."""
    if not rows:
        return set()
    inbound = [_inbound(row) for row in rows]
    if is_postgres(session.get_bind()):
        columns = tuple(inbound[0])
        assert all(tuple(row) == columns for row in inbound), "rows setting different columns"
        found = session.connection().exec_driver_sql(
            _inbound_from_json(columns), {"rows": document(inbound)}
        )
    else:
        found = session.execute(insert_ignoring("sqlite", _MESSAGE, ("wamid",)), inbound)
    return {wamid for (wamid,) in found}


def hold_inbound(session: Session, row: dict[str, Any]) -> None:
    """Store a message (insert_inbound's keywords) from a contact this transaction created:
    with a new sender it cannot have been stored before, so it needs no answer and is written
    with the transaction's other rows (storage.deferred)."""
    insert_row(session, _MESSAGE, _inbound(row))


@lru_cache(maxsize=4)
def _inbound_from_json(columns: tuple[str, ...]) -> str:
    """PostgreSQL: a body's messages in one short constant statement, in the body's order."""
    return insert_rows("message", columns, "rows") + " ON CONFLICT DO NOTHING RETURNING wamid"


def _inbound(row: dict[str, Any]) -> dict[str, Any]:
    """An inbound row as the log keeps it: a new id, received now."""
    return {"id": new_id(), "direction": "in", "status": "received", "created_at": utcnow(), **row}


_MESSAGE = Message.__table__  # type: ignore[attr-defined]


def messages_of(session: Session, *, contact_id: int) -> list[Message]:
    """Oldest first by Meta's timestamp, at Meta's one-second precision; within one second, in
    the order we stored them (so a reply follows the message it answers)."""
    messages = session.exec(
        select(Message)
        .where(Message.contact_id == contact_id)
        .order_by(col(Message.meta_timestamp), col(Message.created_at))
    )
    return sorted(messages, key=lambda m: (m.meta_timestamp.replace(microsecond=0), m.created_at))
