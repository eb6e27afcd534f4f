"""The transactional outbox: messages to send, written in the transaction that decided to send them.

Dispatchers claim due rows with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), send them, and
settle each one: sent, retried later, failed, or cancelled. A dispatcher that dies holding rows
loses nothing: its lease runs out and another dispatcher claims them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, or_
from sqlmodel import Session, col, select, update

from storage.db import is_postgres
from storage.models import Message, OutboxItem, new_id
from storage.types import utcnow


def enqueue_message(
    session: Session,
    *,
    contact_id: int,
    phone_number_id: str,
    payload: dict[str, Any],
    type: str,
    text: str | None,
    category: str | None = None,
    purpose: str | None = None,
    text_version: str | None = None,
    now: datetime | None = None,
) -> Message:
    """Log an outbound message as queued and put it in the outbox, in the caller's transaction."""
    now = now or utcnow()
    message = Message(
        id=new_id(),
        contact_id=contact_id,
        direction="out",
        phone_number_id=phone_number_id,
        type=type,
        text=text,
        status="queued",
        meta_timestamp=now,
        created_at=now,
        category=category,
        purpose=purpose,
        text_version=text_version,
        raw=payload,
    )
    session.add(message)
    session.flush()
    session.add(
        OutboxItem(
            message_id=message.id,
            phone_number_id=phone_number_id,
            kind="message",
            payload=payload,
            due_at=now,
            created_at=now,
        )
    )
    return message


def enqueue_read_receipt(
    session: Session, *, phone_number_id: str, wamid: str, now: datetime | None = None
) -> None:
    now = now or utcnow()
    session.add(
        OutboxItem(
            message_id=None,
            phone_number_id=phone_number_id,
            kind="read_receipt",
            payload={"message_id": wamid},
            due_at=now,
            created_at=now,
        )
    )


def cancel_pending(session: Session, *, contact_id: int, keep: set[str] | None = None) -> int:
    """Cancel every unsent message to a contact (after STOP), except the ids in keep."""
    keep = keep or set()
    pending = session.exec(
        select(OutboxItem, Message)
        .join(Message, col(Message.id) == col(OutboxItem.message_id))
        .where(Message.contact_id == contact_id, Message.status == "queued")
    ).all()
    cancelled = 0
    for item, message in pending:
        if message.id in keep:
            continue
        message.status = "cancelled"
        message.error_title = "cancelled: the contact stopped messages before it was sent"
        session.add(message)
        session.delete(item)
        cancelled += 1
    return cancelled


@dataclass(frozen=True, slots=True)
class Claimed:
    """A row this dispatcher holds until its lease ends."""

    outbox_id: int
    message_id: str | None
    phone_number_id: str
    kind: str
    payload: dict[str, Any]
    attempts: int
    contact_id: int | None
    category: str | None
    purpose: str | None


def claim_due(
    session: Session, *, worker: str, limit: int, lease: timedelta, now: datetime | None = None
) -> list[Claimed]:
    """Claim up to limit due rows; commit the session to make the claim visible."""
    now = now or utcnow()
    statement = (
        select(OutboxItem)
        .where(
            OutboxItem.due_at <= now,
            or_(col(OutboxItem.claimed_until).is_(None), OutboxItem.claimed_until < now),
        )
        .order_by(col(OutboxItem.due_at), col(OutboxItem.id))
        .limit(limit)
    )
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update(skip_locked=True)
    items = list(session.exec(statement))
    if not items:
        return []
    message_ids = [i.message_id for i in items if i.message_id]
    messages = {
        m.id: m for m in session.exec(select(Message).where(col(Message.id).in_(message_ids)))
    }
    claimed = []
    for item in items:
        item.claimed_until = now + lease
        item.claimed_by = worker
        session.add(item)
        message = messages.get(item.message_id) if item.message_id else None
        claimed.append(
            Claimed(
                outbox_id=item.id,
                message_id=item.message_id,
                phone_number_id=item.phone_number_id,
                kind=item.kind,
                payload=item.payload,
                attempts=item.attempts,
                contact_id=message.contact_id if message else None,
                category=message.category if message else None,
                purpose=message.purpose if message else None,
            )
        )
    return claimed


def _held(session: Session, claimed: Claimed, worker: str) -> OutboxItem | None:
    """The row, if this worker still holds it (a lease that ran out may have passed it on)."""
    item = session.get(OutboxItem, claimed.outbox_id)
    if item is None or item.claimed_by != worker:
        return None
    return item


def settle_sent(
    session: Session, claimed: Claimed, *, worker: str, wamid: str | None, now: datetime
) -> bool:
    item = _held(session, claimed, worker)
    if item is None:
        return False
    session.delete(item)
    if claimed.message_id:
        message = session.get(Message, claimed.message_id)
        if message is not None:
            message.wamid = wamid
            if message.status in ("queued",):
                message.status = "sent"
                message.status_at = now
            session.add(message)
    return True


def settle_retry(
    session: Session,
    claimed: Claimed,
    *,
    worker: str,
    due_at: datetime,
    error: str,
    count_attempt: bool = True,
) -> bool:
    item = _held(session, claimed, worker)
    if item is None:
        return False
    item.attempts += 1 if count_attempt else 0
    item.due_at = due_at
    item.claimed_until = None
    item.claimed_by = None
    item.last_error = error
    session.add(item)
    return True


def settle_failed(
    session: Session,
    claimed: Claimed,
    *,
    worker: str,
    code: int | None,
    title: str,
    status: str = "failed",
    now: datetime,
) -> bool:
    """End a row for good: failed with Meta's code, or cancelled (status='cancelled')."""
    item = _held(session, claimed, worker)
    if item is None:
        return False
    session.delete(item)
    if claimed.message_id:
        message = session.get(Message, claimed.message_id)
        if message is not None:
            message.status = status
            message.status_at = now
            message.error_code = code
            message.error_title = title[:512]
            session.add(message)
    return True


def release(session: Session, *, worker: str) -> int:
    """Give back every row this worker holds (graceful shutdown)."""
    result = session.execute(
        update(OutboxItem)
        .where(and_(OutboxItem.claimed_by == worker))
        .values(claimed_until=None, claimed_by=None)
    )
    return result.rowcount or 0


def pending_count(session: Session) -> int:
    from sqlalchemy import func

    return session.exec(select(func.count()).select_from(OutboxItem)).one()
