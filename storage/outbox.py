"""The transactional outbox: messages to send, written in the transaction that decided to send them.

Dispatchers claim due rows with a lease (FOR UPDATE SKIP LOCKED on PostgreSQL), send them, and
settle each one: sent, retried later, failed, or cancelled. A dispatcher that dies holding rows
loses nothing: its lease runs out and another dispatcher claims them. Answers to someone who just
wrote (dialogue replies, read receipts, the double opt-in request) are claimed before business
sends: a campaign queued for an hour must not keep a person who wrote HELP waiting for it.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, bindparam, case, func, or_, text
from sqlalchemy import delete as sa_delete
from sqlalchemy import select as sa_select
from sqlalchemy import update as sa_update
from sqlmodel import Session, col, select, update

from storage.bulk import any_of
from storage.conversation import STATUS_RANK
from storage.db import is_postgres
from storage.deferred import insert_row
from storage.models import (
    Message,
    OutboxItem,
    StatusEvent,
    new_id,
)
from storage.types import utcnow

PRIORITY_ANSWER = 0  # someone is waiting for it
PRIORITY_BUSINESS = 1  # a business send through the API


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
    priority: int = PRIORITY_ANSWER,
    now: datetime | None = None,
    message_id: str | None = None,
) -> str:
    """Log an outbound message as queued and put it in the outbox, in the caller's transaction;
    the message's id. ``message_id`` is for a payload that must name its own message (a Flow's
    token). Written with SQL rather than through the session (it is on every answer's path):
    at once, or at the next flush in a deferring block (storage.deferred)."""
    now = now or utcnow()
    message = {
        "id": message_id or new_id(),
        "contact_id": contact_id,
        "direction": "out",
        "phone_number_id": phone_number_id,
        "type": type,
        "text": text,
        "status": "queued",
        "meta_timestamp": now,
        "created_at": now,
        "category": category,
        "purpose": purpose,
        "text_version": text_version,
        "raw": payload,
    }
    insert_row(session, _MESSAGES, message)
    insert_row(
        session,
        _OUTBOX,
        _outbox_row(message["id"], phone_number_id, "message", payload, priority, now),
    )
    return message["id"]


def _outbox_row(
    message_id: str | None,
    phone_number_id: str,
    kind: str,
    payload: dict[str, Any],
    priority: int,
    now: datetime,
) -> dict[str, Any]:
    return {
        "message_id": message_id,
        "phone_number_id": phone_number_id,
        "kind": kind,
        "payload": payload,
        "priority": priority,
        "due_at": now,
        "created_at": now,
        "attempts": 0,
    }


def enqueue_read_receipt(
    session: Session, *, phone_number_id: str, wamid: str, now: datetime | None = None
) -> None:
    now = now or utcnow()
    insert_row(
        session,
        _OUTBOX,
        _outbox_row(
            None, phone_number_id, "read_receipt", {"message_id": wamid}, PRIORITY_ANSWER, now
        ),
    )


def cancel_pending(session: Session, *, contact_id: int) -> int:
    """Cancel every unsent message to a contact (after STOP): each queued message's outbox rows
    deleted, so no dispatcher sends it, and the message marked cancelled. How many rows went.
    On PostgreSQL one statement; elsewhere the messages, then their rows."""
    params = {"contact_id": contact_id, "title": CANCELLED_TITLE}
    if is_postgres(session.get_bind()):
        return int(session.execute(_CANCEL_TOGETHER, params).scalar_one())
    cancelled = list(session.execute(_CANCEL_MESSAGES, params).scalars())
    if not cancelled:
        return 0
    gone = session.execute(
        sa_delete(_OUTBOX).where(_OUTBOX.c.message_id.in_(cancelled)).returning(_OUTBOX.c.id)
    )
    return len(gone.all())


CANCELLED_TITLE = "cancelled: the contact stopped messages before it was sent"
_CANCEL_TOGETHER = text(
    """
WITH gone AS (
    DELETE FROM outbox AS o USING message AS m
    WHERE o.message_id = m.id AND m.contact_id = :contact_id AND m.status = 'queued'
    RETURNING o.message_id
), marked AS (
    UPDATE message SET status = 'cancelled', error_title = :title
    WHERE id IN (SELECT message_id FROM gone)
)
SELECT count(*) FROM gone
"""
)
_CANCEL_MESSAGES = text(
    """
UPDATE message SET status = 'cancelled', error_title = :title
WHERE contact_id = :contact_id AND status = 'queued'
    AND id IN (SELECT message_id FROM outbox WHERE message_id IS NOT NULL)
RETURNING id
"""
)


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


_OUTBOX = OutboxItem.__table__  # type: ignore[attr-defined]
_MESSAGES = Message.__table__  # type: ignore[attr-defined]
# What a claim returns of each row: the outbox row's own columns, then its message's.
_CLAIMED_COLUMNS = ("id", "message_id", "phone_number_id", "kind", "payload", "attempts")
_MESSAGE_COLUMNS = ("contact_id", "category", "purpose")
_CLAIM_ORDER = ("priority", "due_at", "id")


def claim_due(
    session: Session, *, worker: str, limit: int, lease: timedelta, now: datetime | None = None
) -> list[Claimed]:
    """Claim up to limit due rows, in claim order; commit the session to make the claim visible.

    Plain SQL expressions, not ORM objects: a claim is a few hundred rows at a time. On
    PostgreSQL it is one statement: the due rows are locked (skipping those another dispatcher
    is locking), leased and read back with their message's facts.
    """
    now = now or utcnow()
    outbox, messages = _OUTBOX, _MESSAGES
    due = (
        sa_select(outbox.c.id)
        .where(
            outbox.c.due_at <= now,
            or_(outbox.c.claimed_until.is_(None), outbox.c.claimed_until < now),
        )
        .order_by(*(outbox.c[name] for name in _CLAIM_ORDER))
        .limit(limit)
    )
    lease_values = {"claimed_until": now + lease, "claimed_by": worker}
    if is_postgres(session.get_bind()):
        locked = due.with_for_update(skip_locked=True).cte("due")
        claimed = (
            sa_update(outbox)
            .where(outbox.c.id == locked.c.id)
            .values(lease_values)
            .returning(*(outbox.c[name] for name in (*_CLAIMED_COLUMNS, *_CLAIM_ORDER[:2])))
            .cte("claimed")
        )
        statement = (
            sa_select(
                *(claimed.c[name] for name in _CLAIMED_COLUMNS),
                *(messages.c[name] for name in _MESSAGE_COLUMNS),
            )
            .select_from(claimed.outerjoin(messages, messages.c.id == claimed.c.message_id))
            .order_by(*(claimed.c[name] for name in _CLAIM_ORDER))
        )
        rows = session.execute(statement).all()
    else:
        # SQLite took its write lock at BEGIN: nobody claims between the read and the lease.
        ids = due.subquery()
        rows = session.execute(
            sa_select(
                *(outbox.c[name] for name in _CLAIMED_COLUMNS),
                *(messages.c[name] for name in _MESSAGE_COLUMNS),
            )
            .select_from(outbox.outerjoin(messages, messages.c.id == outbox.c.message_id))
            .where(outbox.c.id.in_(sa_select(ids.c.id)))
            .order_by(*(outbox.c[name] for name in _CLAIM_ORDER))
        ).all()
        if rows:
            session.execute(
                sa_update(outbox)
                .where(outbox.c.id.in_([row[0] for row in rows]))
                .values(lease_values)
            )
    return [Claimed(*row) for row in rows]


def _held(session: Session, claimed: Claimed, worker: str) -> OutboxItem | None:
    """The row, if this worker still holds it (a lease that ran out may have passed it on)."""
    item = session.get(OutboxItem, claimed.outbox_id)
    if item is None or item.claimed_by != worker:
        return None
    return item


# Plain executemany (not the ORM's bulk update): one round trip for a whole group of rows.
_MARK_SENT = (
    _MESSAGES.update()
    .where(_MESSAGES.c.id == bindparam("message_id"))
    .values(
        wamid=bindparam("wamid"),
        status=case((_MESSAGES.c.status == "queued", "sent"), else_=_MESSAGES.c.status),
        status_at=case(
            (_MESSAGES.c.status == "queued", bindparam("now")), else_=_MESSAGES.c.status_at
        ),
    )
)


def settle_sent_many(
    session: Session,
    sent: Sequence[tuple[Claimed, str | None]],
    *,
    worker: str,
    now: datetime,
    moved: list[Message] | None = None,
) -> int:
    """Settle many sent rows in one transaction; how many this worker still held.

    A status webhook can arrive before the wamid is stored here (Meta is quick, and sends are
    settled in groups); such statuses were kept as status events and are applied now, and the
    messages they moved are added to `moved` (a failed one may say something about the person).
    """
    if not sent:
        return 0
    # Plain table statements (not the ORM's bulk delete, which evaluates its criteria against
    # the session's objects): a group of a few dozen rows is settled several times a second.
    held = set(
        session.execute(
            _OUTBOX.delete()
            .where(
                any_of(session, _OUTBOX.c.id, [claimed.outbox_id for claimed, _ in sent]),
                _OUTBOX.c.claimed_by == worker,
            )
            .returning(_OUTBOX.c.id)
        ).scalars()
    )
    updates = sorted(  # a stable lock order, so concurrent settles cannot deadlock
        (
            {"message_id": claimed.message_id, "wamid": wamid, "now": now}
            for claimed, wamid in sent
            if claimed.outbox_id in held and claimed.message_id
        ),
        key=lambda values: values["message_id"],
    )
    if updates:
        session.execute(_MARK_SENT, updates)
        changed = _apply_early_statuses(session, [u["wamid"] for u in updates if u["wamid"]])
        if moved is not None:
            moved.extend(changed)
    return len(held)


def _apply_early_statuses(session: Session, wamids: list[str]) -> list[Message]:
    if not wamids:
        return []
    events = StatusEvent.__table__  # type: ignore[attr-defined]
    early = session.execute(
        sa_select(
            events.c.wamid,
            events.c.status,
            events.c.meta_timestamp,
            events.c.error_code,
            events.c.error_title,
        ).where(any_of(session, events.c.wamid, wamids))
    ).all()
    best: dict[str, Any] = {}
    for event in early:
        current = best.get(event.wamid)
        if current is None or STATUS_RANK.get(event.status, 0) > STATUS_RANK.get(current.status, 0):
            best[event.wamid] = event
    changed = []
    for wamid, event in best.items():
        message = session.exec(select(Message).where(Message.wamid == wamid)).first()
        if message is None or STATUS_RANK.get(event.status, 0) <= STATUS_RANK.get(
            message.status, 0
        ):
            continue
        message.status, message.status_at = event.status, event.meta_timestamp
        if event.error_code is not None or event.error_title is not None:
            message.error_code, message.error_title = event.error_code, event.error_title
        session.add(message)
        changed.append(message)
    return changed


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


def release_one(session: Session, claimed: Claimed, *, worker: str) -> bool:
    """Give one row back unsent, as it was (not counted as an attempt)."""
    item = _held(session, claimed, worker)
    if item is None:
        return False
    item.claimed_until = None
    item.claimed_by = None
    session.add(item)
    return True


def release(session: Session, *, worker: str) -> int:
    """Give back every row this worker holds (graceful shutdown)."""
    result = session.execute(
        update(OutboxItem)
        .where(and_(OutboxItem.claimed_by == worker))
        .values(claimed_until=None, claimed_by=None)
    )
    return result.rowcount or 0


@dataclass(frozen=True, slots=True)
class Backlog:
    """Outbox rows of one priority in one state: due now, scheduled later, or claimed."""

    priority: int
    state: str  # "due" | "scheduled" | "claimed"
    rows: int
    oldest_due_at: datetime | None


def backlog(session: Session, *, now: datetime | None = None) -> list[Backlog]:
    """What waits in the outbox, in one grouped query (for monitoring)."""
    now = now or utcnow()
    claimed = and_(col(OutboxItem.claimed_until).is_not(None), OutboxItem.claimed_until >= now)
    state = case(
        (claimed, "claimed"), (col(OutboxItem.due_at) <= now, "due"), else_="scheduled"
    ).label("state")
    rows = session.execute(
        select(OutboxItem.priority, state, func.count(), func.min(OutboxItem.due_at)).group_by(
            OutboxItem.priority, state
        )
    ).all()
    return [Backlog(priority, state, count, oldest) for priority, state, count, oldest in rows]
