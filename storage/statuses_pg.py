"""A body's statuses on PostgreSQL in its own SQL, sent on the pooled connection's psycopg
driver: a handful of constant statements that psycopg prepares once per connection, whatever
the body holds, a batch's values passed as arrays instead of a parameter per value.

This is the webhook's busiest path. Built as SQLAlchemy statements, one status cost some 2 ms of
CPU in building, caching and compiling them, and a 100-status INSERT spent as much again in the
driver splitting a query of 1,100 placeholders; here neither happens. Moves exactly as the
portable path (storage.statuses) does, from the same steps (storage.status_steps).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from typing import Any

import psycopg
from sqlalchemy.engine import Connection
from sqlalchemy.exc import DBAPIError

from storage.conversation import STATUS_RANK
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

_COLUMNS = (
    "wamid, status, phone_number_id, recipient_id, recipient_user_id, recipient_participant_id,"
    " meta_timestamp, error_code, error_title, raw, received_at"
)
# The stage a message is at, as a number: a status moves it only to a higher one.
_RANK = (
    "CASE message.status "
    + " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    + " ELSE 0 END"
)
_RETURNED = "RETURNING id, contact_id, error_code, error_title"


def _move(error_set: str, only_if: str = "") -> str:
    return (
        f"UPDATE message SET status = %(status)s, status_at = %(at)s{error_set}"
        f" WHERE wamid = %(wamid)s AND {_RANK} < %(rank)s{only_if} {_RETURNED}"
    )


# A status carrying an error sets it; one without leaves the message's error as it was.
_WITH_ERROR = ", error_code = %(code)s, error_title = %(title)s"
_MOVE = {True: _move(_WITH_ERROR), False: _move("")}


def _one(error_set: str) -> str:
    """The event's INSERT feeding the message's forward-only UPDATE, which runs only if the
    event was new: one round trip for what Meta mostly sends."""
    return (
        f"WITH new_event AS (INSERT INTO status_event ({_COLUMNS})"
        " VALUES (%(wamid)s, %(status)s, %(phone_number_id)s, %(recipient_id)s,"
        " %(recipient_user_id)s, %(participant)s, %(at)s, %(code)s, %(title)s,"
        " %(raw)s::jsonb, %(now)s)"
        " ON CONFLICT DO NOTHING RETURNING id),"
        f" moved AS ({_move(error_set, ' AND EXISTS (SELECT FROM new_event)')})"
        " SELECT EXISTS (SELECT FROM new_event), moved.id, moved.contact_id, moved.error_code,"
        " moved.error_title FROM (SELECT 1) AS one LEFT JOIN moved ON true"
    )


_ONE = {True: _one(_WITH_ERROR), False: _one("")}

# Inserted in key order, the same in every worker, so two bodies naming the same statuses wait
# for each other instead of deadlocking; a key twice in a body keeps its first row.
_INSERT = (
    f"INSERT INTO status_event ({_COLUMNS})"
    " SELECT wamid, status, phone_number_id, recipient_id, recipient_user_id, participant, at,"
    " code, title, raw, %(now)s"
    " FROM unnest(%(wamid)s::text[], %(status)s::text[], %(phone_number_id)s::text[],"
    " %(recipient_id)s::text[], %(recipient_user_id)s::text[], %(participant)s::text[],"
    " %(at)s::timestamptz[], %(code)s::bigint[], %(title)s::text[], %(raw)s::jsonb[])"
    " WITH ORDINALITY AS v(wamid, status, phone_number_id, recipient_id, recipient_user_id,"
    " participant, at, code, title, raw, n)"
    " ORDER BY wamid, status, n"
    " ON CONFLICT DO NOTHING RETURNING wamid, status"
)
_LOCK = (
    "SELECT wamid, id, contact_id, status, error_code, error_title FROM message"
    " WHERE wamid = ANY(%(wamids)s::text[]) ORDER BY id FOR UPDATE"
)
_WRITE_FINAL = (
    "UPDATE message SET status = v.status, status_at = v.at, error_code = v.code,"
    " error_title = v.title"
    " FROM unnest(%(id)s::text[], %(status)s::text[], %(at)s::timestamptz[], %(code)s::bigint[],"
    " %(title)s::text[]) AS v(id, status, at, code, title)"
    " WHERE message.id = v.id"
)


def record_statuses(connection: Connection, rows: Sequence[StatusRow]) -> Applied:
    """Keep each status once per (wamid, status) and move each message forward only, in the
    connection's transaction."""
    if len(rows) == 1:
        return _record_one(connection, rows[0])
    now = utcnow()
    inserted = _execute(
        connection,
        _INSERT,
        {
            "now": now,
            "wamid": [row.wamid for row in rows],
            "status": [row.status for row in rows],
            "phone_number_id": [row.phone_number_id for row in rows],
            "recipient_id": [row.recipient_id for row in rows],
            "recipient_user_id": [row.recipient_user_id for row in rows],
            "participant": [row.recipient_participant_id for row in rows],
            "at": [row.meta_timestamp for row in rows],
            "code": [row.error_code for row in rows],
            "title": [row.error_title for row in rows],
            "raw": [_json(row.raw) for row in rows],
        },
    )
    new = newness(rows, {(wamid, status) for wamid, status in inserted})
    fresh = [row for row, is_new in zip(rows, new, strict=True) if is_new]
    if not fresh:
        return Applied(new=tuple(new), moved=())
    if len(fresh) == 1:  # one statement moves it, or finds it moved on
        row = fresh[0]
        found = _execute(connection, _MOVE[_has_error(row)], _params(row))
        step = moved_by(row, found[0] if found else None)
        return Applied(new=tuple(new), moved=(step,) if step else ())
    locked = _execute(connection, _LOCK, {"wamids": sorted({row.wamid for row in fresh})})
    stored = {wamid: Stored(*message) for wamid, *message in locked}
    moved = forward_steps(stored, fresh)
    _write_final(connection, moved)
    return Applied(new=tuple(new), moved=tuple(moved))


def _record_one(connection: Connection, row: StatusRow) -> Applied:
    params = _params(row)
    params |= {
        "phone_number_id": row.phone_number_id,
        "recipient_id": row.recipient_id,
        "recipient_user_id": row.recipient_user_id,
        "participant": row.recipient_participant_id,
        "raw": _json(row.raw),
        "now": utcnow(),
    }
    [(new, *found)] = _execute(connection, _ONE[_has_error(row)], params)
    step = moved_by(row, found)
    return Applied(new=(bool(new),), moved=(step,) if step else ())


def _write_final(connection: Connection, moved: Sequence[Moved]) -> None:
    values = final_values(moved)
    if not values:
        return
    _execute(
        connection,
        _WRITE_FINAL,
        {
            "id": [v["message_id"] for v in values],
            "status": [v["new_status"] for v in values],
            "at": [v["new_status_at"] for v in values],
            "code": [v["new_error_code"] for v in values],
            "title": [v["new_error_title"] for v in values],
        },
    )


def _has_error(row: StatusRow) -> bool:
    return row.error_code is not None or row.error_title is not None


def _params(row: StatusRow) -> dict[str, Any]:
    return {
        "wamid": row.wamid,
        "status": row.status,
        "at": row.meta_timestamp,
        "code": row.error_code,
        "title": row.error_title,
        "rank": STATUS_RANK.get(row.status, 0),
    }


def _json(raw: dict[str, Any] | None) -> str | None:
    return None if raw is None else json.dumps(raw, separators=(",", ":"))


def _execute(connection: Connection, sql: str, params: dict[str, Any]) -> list[tuple[Any, ...]]:
    """Run one statement on the connection's driver; its rows. A driver error is raised as
    SQLAlchemy would raise it (and a lost connection invalidated), so callers tell storage down
    from data refused exactly as for any other statement."""
    driver = connection.connection.driver_connection
    try:
        with driver.cursor() as cursor:
            cursor.execute(sql, params)
            return cursor.fetchall() if cursor.description is not None else []
    except psycopg.Error as exc:
        lost = connection.dialect.is_disconnect(exc, driver, None)
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql,
            None,  # never the values: numbers and texts stay out of logs
            exc,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=connection.dialect,
        ) from exc
