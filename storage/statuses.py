"""A body's delivery statuses applied together: the events kept once each in one insert, their
messages locked in one query and moved forward only in one update, however many there are.

Campaigns come back as up to three statuses per message sent, often a hundred to a body, so this
is the webhook's busiest path. Rows are locked in id order, the same order in every worker, so
two bodies naming the same messages wait for each other instead of deadlocking. On PostgreSQL
the work is done in its own SQL (storage.statuses_pg); this portable path serves SQLite.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Sequence
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy import Update, bindparam, case, select, update
from sqlalchemy.dialects import sqlite
from sqlalchemy.engine import Engine
from sqlmodel import Session, col

from storage import statuses_pg
from storage.conversation import STATUS_RANK
from storage.db import is_postgres, session_scope
from storage.models import Message, StatusEvent
from storage.status_groups import StatusGroups
from storage.status_steps import (
    Applied,
    Moved,
    StatusRow,
    Stored,
    final_values,
    forward_steps,
    moved_by,
    newness,
)
from storage.types import utcnow

__all__ = [
    "Applied",
    "Moved",
    "StatusRow",
    "Stored",
    "forward_steps",
    "record_alone",
    "record_grouped",
    "record_statuses",
]

# Rows per INSERT: far below SQLite's limit on bound parameters.
CHUNK = 500


def record_statuses(session: Session, rows: Sequence[StatusRow]) -> Applied:
    """Keep each status once per (wamid, status) and move each message forward only."""
    if is_postgres(session.get_bind()):
        return statuses_pg.record_statuses(session.connection(), rows)
    new = newness(rows, _insert_new(session, rows))
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


def record_alone(engine: Engine, rows: Sequence[StatusRow]) -> Applied:
    """record_statuses in a transaction of its own, committed when it returns: for a body
    whose statuses need nothing else done with them. On PostgreSQL, one round trip."""
    if is_postgres(engine):
        return statuses_pg.record_and_commit(engine, rows)
    with session_scope(engine) as session:
        return record_statuses(session, rows)


_GROUPS: weakref.WeakKeyDictionary[Engine, StatusGroups] = weakref.WeakKeyDictionary()
_GROUPS_MADE = threading.Lock()


def record_grouped(engine: Engine, rows: Sequence[StatusRow]) -> tuple[bool, ...]:
    """record_alone, which rows were new. A body of one status, what Meta mostly sends, is
    committed with the single statuses of whatever requests this process is recording at the
    same time (storage.status_groups); a body of several is one statement already."""
    if len(rows) != 1:
        return _newness_alone(engine, rows)
    groups = _GROUPS.get(engine)
    if groups is None:
        with _GROUPS_MADE:
            commit = statuses_pg.record_each_and_commit if is_postgres(engine) else _newness_alone
            groups = _GROUPS.setdefault(engine, StatusGroups(partial(commit, engine)))
    return groups.record(rows)


def _newness_alone(engine: Engine, rows: Sequence[StatusRow]) -> tuple[bool, ...]:
    return record_alone(engine, rows).new


def record_status(session: Session, **fields: Any) -> Applied:
    """One status, named field by field (recipient ids optional): record_statuses of one."""
    fields.setdefault("recipient_user_id", None)
    fields.setdefault("recipient_participant_id", None)
    return record_statuses(session, [StatusRow(**fields)])


def _insert_new(session: Session, rows: Sequence[StatusRow]) -> set[tuple[str, str]]:
    """Insert the events, skipping any already kept; the (wamid, status) keys inserted."""
    table = StatusEvent.__table__  # type: ignore[attr-defined]
    now = utcnow()
    inserted: set[tuple[str, str]] = set()
    for start in range(0, len(rows), CHUNK):
        values = [_event_values(row, now) for row in rows[start : start + CHUNK]]
        # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
        # Executed as many: SQLAlchemy sends it as one multi-row INSERT, compiled once.
        statement = (
            sqlite.insert(table).on_conflict_do_nothing().returning(table.c.wamid, table.c.status)
        )
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
    # No row locks on SQLite: its BEGIN IMMEDIATE already holds the database's one write lock.
    return {
        wamid: Stored(message_id, contact_id, status, error_code, error_title)
        for wamid, message_id, contact_id, status, error_code, error_title in session.execute(
            statement
        )
    }


def _move_one(session: Session, row: StatusRow) -> Moved | None:
    """One status applied in one UPDATE whose condition keeps it forward-only."""
    found = session.connection().execute(_move_statement(row)).first()
    return moved_by(row, found)


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
