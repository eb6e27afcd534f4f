"""A body's delivery statuses applied together: the events kept once each in one insert, their
messages locked in one query and moved forward only in one update, however many there are.

Campaigns come back as up to three statuses per message sent, often a hundred to a body, so this
is the webhook's busiest path. Rows are locked in id order, the same order in every worker, so
two bodies naming the same messages wait for each other instead of deadlocking.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Update, bindparam, case, exists, literal, select, true, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col

from storage.conversation import STATUS_RANK
from storage.db import is_postgres
from storage.models import Message, StatusEvent
from storage.types import utcnow

# Rows per INSERT: far below both databases' limits on bound parameters.
CHUNK = 500


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One status as Meta reported it, in the order of the body."""

    wamid: str
    status: str
    meta_timestamp: datetime
    phone_number_id: str | None
    recipient_id: str | None
    recipient_user_id: str | None
    recipient_participant_id: str | None
    error_code: int | None
    error_title: str | None
    raw: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Stored:
    """A message as locked before its new statuses apply."""

    message_id: str
    contact_id: int
    status: str
    error_code: int | None
    error_title: str | None


@dataclass(frozen=True, slots=True)
class Moved:
    """A step a new status moved a message forward by, and the error it has after it."""

    message_id: str
    contact_id: int
    wamid: str
    status: str
    error_code: int | None
    error_title: str | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch did: which rows were new, and each step a message took, in body order."""

    new: tuple[bool, ...]
    moved: tuple[Moved, ...]


def record_statuses(session: Session, rows: Sequence[StatusRow]) -> Applied:
    """Keep each status once per (wamid, status) and move each message forward only."""
    if len(rows) == 1 and is_postgres(session.get_bind()):
        return _record_one_in_one_statement(session, rows[0])
    inserted = _insert_new(session, rows)
    # A key twice in one body is inserted once: only its first row is new.
    new = []
    for row in rows:
        key = (row.wamid, row.status)
        new.append(key in inserted)
        inserted.discard(key)
    fresh = [row for row, is_new in zip(rows, new, strict=True) if is_new]
    if not fresh:
        return Applied(new=tuple(new), moved=())
    if len(fresh) == 1:  # what Meta mostly sends: one statement moves it, or finds it moved on
        moved_one = _move_one(session, fresh[0])
        return Applied(new=tuple(new), moved=(moved_one,) if moved_one else ())
    stored = _lock_messages(session, sorted({row.wamid for row in fresh}))
    moved = forward_steps(stored, fresh)
    _write_final(session, moved)
    return Applied(new=tuple(new), moved=tuple(moved))


def _record_one_in_one_statement(session: Session, row: StatusRow) -> Applied:
    """What Meta mostly sends, in one round trip on PostgreSQL: the event's INSERT feeds the
    message's forward-only UPDATE, which runs only if the event was new."""
    table = StatusEvent.__table__  # type: ignore[attr-defined]
    new_event = (
        postgresql.insert(table)
        .values(_event_values(row, utcnow()))
        .on_conflict_do_nothing()
        .returning(table.c.id)
        .cte("new_event")
    )
    is_new = exists(select(new_event.c.id))
    moved = _move_statement(row).where(is_new).cte("moved")
    one = select(literal(1).label("one")).subquery("one")
    statement = select(
        is_new, moved.c.id, moved.c.contact_id, moved.c.error_code, moved.c.error_title
    ).select_from(one.outerjoin(moved, true()))
    new, *found = session.connection().execute(statement).one()
    step = _moved(row, found)
    return Applied(new=(bool(new),), moved=(step,) if step else ())


def record_status(session: Session, **fields: Any) -> Applied:
    """One status, named field by field (recipient ids optional): record_statuses of one."""
    fields.setdefault("recipient_user_id", None)
    fields.setdefault("recipient_participant_id", None)
    return record_statuses(session, [StatusRow(**fields)])


def forward_steps(stored: dict[str, Stored], fresh: Sequence[StatusRow]) -> list[Moved]:
    """The steps the statuses take their messages through, as if applied one by one in body
    order: a status moves a message only to a later stage ("read" before "delivered" stays
    "read"), and a step that carries an error sets it. `stored` holds the messages by wamid; a
    status of any other wamid moves nothing."""
    now = dict(stored)
    steps: list[Moved] = []
    for row in fresh:
        message = now.get(row.wamid)
        if message is None:
            continue  # not one of ours, or sent before this database: kept, moves nothing
        if STATUS_RANK.get(row.status, 0) <= STATUS_RANK.get(message.status, 0):
            continue
        error = (row.error_code, row.error_title)
        if error == (None, None):
            error = (message.error_code, message.error_title)
        message = Stored(message.message_id, message.contact_id, row.status, *error)
        now[row.wamid] = message
        steps.append(
            Moved(
                message_id=message.message_id,
                contact_id=message.contact_id,
                wamid=row.wamid,
                status=row.status,
                error_code=message.error_code,
                error_title=message.error_title,
                occurred_at=row.meta_timestamp,
            )
        )
    return steps


def final_values(moved: Sequence[Moved]) -> list[dict[str, Any]]:
    """Each moved message as its last step left it."""
    final = {
        step.message_id: {
            "message_id": step.message_id,
            "new_status": step.status,
            "new_status_at": step.occurred_at,
            "new_error_code": step.error_code,
            "new_error_title": step.error_title,
        }
        for step in moved
    }
    return list(final.values())


def _insert_new(session: Session, rows: Sequence[StatusRow]) -> set[tuple[str, str]]:
    """Insert the events, skipping any already kept; the (wamid, status) keys inserted."""
    insert = postgresql.insert if is_postgres(session.get_bind()) else sqlite.insert
    table = StatusEvent.__table__  # type: ignore[attr-defined]
    now = utcnow()
    inserted: set[tuple[str, str]] = set()
    for start in range(0, len(rows), CHUNK):
        values = [_event_values(row, now) for row in rows[start : start + CHUNK]]
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        # Executed as many: SQLAlchemy sends it as one multi-row INSERT, compiled once.
        statement = insert(table).on_conflict_do_nothing().returning(table.c.wamid, table.c.status)
        result = session.connection().execute(statement, values)
        inserted.update((wamid, status) for wamid, status in result)
    return inserted


def _event_values(row: StatusRow, now: datetime) -> dict[str, Any]:
    return {
        "wamid": row.wamid,
        "status": row.status,
        "phone_number_id": row.phone_number_id,
        "recipient_id": row.recipient_id,
        "recipient_user_id": row.recipient_user_id,
        "recipient_participant_id": row.recipient_participant_id,
        "meta_timestamp": row.meta_timestamp,
        "error_code": row.error_code,
        "error_title": row.error_title,
        "raw": row.raw,
        "received_at": now,
    }


def _lock_messages(session: Session, wamids: list[str]) -> dict[str, Stored]:
    statement = (
        select(
            Message.wamid,
            Message.id,
            Message.contact_id,
            Message.status,
            Message.error_code,
            Message.error_title,
        )
        .where(col(Message.wamid).in_(wamids))
        .order_by(col(Message.id))
    )
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update()
    return {
        wamid: Stored(message_id, contact_id, status, error_code, error_title)
        for wamid, message_id, contact_id, status, error_code, error_title in session.execute(
            statement
        )
    }


def _move_one(session: Session, row: StatusRow) -> Moved | None:
    """One status applied in one UPDATE whose condition keeps it forward-only (rechecked by
    PostgreSQL on the newest row should another transaction have moved it first)."""
    found = session.connection().execute(_move_statement(row)).first()
    return _moved(row, found)


def _move_statement(row: StatusRow) -> Update:
    table = Message.__table__  # type: ignore[attr-defined]
    rank = case(STATUS_RANK, value=table.c.status, else_=0)
    values: dict[str, Any] = {"status": row.status, "status_at": row.meta_timestamp}
    if row.error_code is not None or row.error_title is not None:
        values |= {"error_code": row.error_code, "error_title": row.error_title}
    return (
        update(table)
        .where(table.c.wamid == row.wamid, rank < STATUS_RANK.get(row.status, 0))
        .values(**values)
        .returning(table.c.id, table.c.contact_id, table.c.error_code, table.c.error_title)
    )


def _moved(row: StatusRow, found: Any) -> Moved | None:
    """The step an UPDATE's returned (id, contact id, error code, error title) says it took."""
    if found is None or found[0] is None:
        return None
    message_id, contact_id, error_code, error_title = found
    return Moved(
        message_id=message_id,
        contact_id=contact_id,
        wamid=row.wamid,
        status=row.status,
        error_code=error_code,
        error_title=error_title,
        occurred_at=row.meta_timestamp,
    )


def _write_final(session: Session, moved: Sequence[Moved]) -> None:
    """One UPDATE per message moved, sent together (executemany)."""
    values = final_values(moved)
    if not values:
        return
    table = Message.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id == bindparam("message_id"))
        .values(
            status=bindparam("new_status"),
            status_at=bindparam("new_status_at"),
            error_code=bindparam("new_error_code"),
            error_title=bindparam("new_error_title"),
        )
    )
    session.connection().execute(statement, values)
