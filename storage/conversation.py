"""The conversation log: inbound messages stored once, statuses applied forward only."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from storage.db import is_postgres
from storage.models import Message, StatusEvent, new_id
from storage.types import utcnow
from storage.upsert import insert_ignoring_conflict

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
    message_id = new_id()
    inserted = insert_ignoring_conflict(
        session,
        Message,
        {
            "id": message_id,
            "contact_id": contact_id,
            "direction": "in",
            "wamid": wamid,
            "phone_number_id": phone_number_id,
            "type": type,
            "text": text,
            "status": "received",
            "meta_timestamp": meta_timestamp,
            "created_at": utcnow(),
            "context_wamid": context_wamid,
            "group_id": group_id,
            "original_wamid": original_wamid,
            "raw": raw,
        },
    )
    return message_id if inserted else None


def record_status(session: Session, **fields: Any) -> Message | None:
    """Keep the status event once per (wamid, status) and move the message forward only.

    Returns the message when this status was new and changed it, else None.
    """
    return record_status_event(session, **fields)[1]


def record_status_event(
    session: Session,
    *,
    wamid: str,
    status: str,
    meta_timestamp: datetime,
    phone_number_id: str | None,
    recipient_id: str | None,
    error_code: int | None,
    error_title: str | None,
    raw: dict[str, Any] | None,
    recipient_user_id: str | None = None,
    recipient_participant_id: str | None = None,
) -> tuple[bool, Message | None]:
    """As record_status, and whether the event was new, so a redelivery counts as a duplicate."""
    inserted = insert_ignoring_conflict(
        session,
        StatusEvent,
        {
            "wamid": wamid,
            "status": status,
            "phone_number_id": phone_number_id,
            "recipient_id": recipient_id,
            "recipient_user_id": recipient_user_id,
            "recipient_participant_id": recipient_participant_id,
            "meta_timestamp": meta_timestamp,
            "error_code": error_code,
            "error_title": error_title,
            "raw": raw,
            "received_at": utcnow(),
        },
    )
    if not inserted:
        return False, None
    statement = select(Message).where(Message.wamid == wamid)
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update()
    message = session.exec(statement).first()
    if message is None or STATUS_RANK.get(status, 0) <= STATUS_RANK.get(message.status, 0):
        return True, None
    message.status = status
    message.status_at = meta_timestamp
    if error_code is not None or error_title is not None:
        message.error_code, message.error_title = error_code, error_title
    session.add(message)
    return True, message


def messages_of(session: Session, *, contact_id: int) -> list[Message]:
    """Oldest first by Meta's timestamp, at Meta's one-second precision; within one second, in
    the order we stored them (so a reply follows the message it answers)."""
    messages = session.exec(
        select(Message)
        .where(Message.contact_id == contact_id)
        .order_by(col(Message.meta_timestamp), col(Message.created_at))
    )
    return sorted(messages, key=lambda m: (m.meta_timestamp.replace(microsecond=0), m.created_at))
