"""A body's statuses on PostgreSQL in one statement, however many: the events inserted, their
messages locked and moved forward only, and the steps they took returned, in one round trip.

This is the webhook's busiest path. Built as SQLAlchemy statements, one status cost some 2 ms of
CPU in building, cache-keying and compiling them, and a 100-status INSERT as much again in the
driver splitting a query of 1,100 placeholders. Here the statement is constant, so psycopg
prepares it once per connection, and the body's rows travel as one JSON document that
PostgreSQL reads into a table (json_to_recordset). A body with nothing else to do in its
transaction runs it alone in autocommit: one round trip, its COMMIT included. One status, what
Meta mostly sends, has a smaller statement of its own, half the database's work of the general one;
a body naming each message once, what a campaign's statuses mostly are, one without its windows.

The steps are those of storage.status_steps.forward_steps, which the portable path applies in
Python: a status moves its message only to a later stage, in body order, and a step without an
error keeps the error the message had.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import Any

import psycopg
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.pool import PoolProxiedConnection

from storage.conversation import STATUS_RANK
from storage.json_rows import document, dumps
from storage.libpq_alone import run_alone, run_together
from storage.libpq_statement import NamedStatement, as_sqlalchemy_errors
from storage.lone_connections import lone_connection
from storage.status_steps import Applied, Moved, StatusRow, moved_by, newness
from storage.types import utcnow

# The stage a stored message is at, as a number: a status moves it only to a higher one.
_STORED_RANK = (
    "CASE m.status "
    + " ".join(f"WHEN '{status}' THEN {rank}" for status, rank in STATUS_RANK.items())
    + " ELSE 0 END"
)

# v: the body's rows, n their order. ins: the events not kept before, inserted in key order
# (the same in every worker, so two bodies naming the same statuses wait instead of
# deadlocking). Both statements below begin so.
_INSERTED = """
WITH v AS (
    SELECT * FROM json_to_recordset(%(rows)s::json) AS v(
        n int, wamid text, status text, rank int, phone_number_id text, recipient_id text,
        recipient_user_id text, participant text, at timestamptz, code bigint, title text,
        raw jsonb)
), ins AS (
    INSERT INTO status_event (wamid, status, phone_number_id, recipient_id, recipient_user_id,
        recipient_participant_id, meta_timestamp, error_code, error_title, raw, received_at)
    SELECT wamid, status, phone_number_id, recipient_id, recipient_user_id, participant, at,
        code, title, raw, %(now)s
    FROM v ORDER BY wamid, status, n
    ON CONFLICT DO NOTHING RETURNING wamid, status
"""

# What both return: the keys inserted (n NULL), then the steps taken, as _record reads them.
_RETURNED = """
SELECT NULL::int, wamid, status, NULL, NULL::int, NULL::bigint, NULL, NULL::timestamptz
FROM ins
UNION ALL
SELECT n, wamid, status, message_id, contact_id, code, title, at FROM took
"""

# fresh: the first row of each key inserted. locked: their messages, in id order. steps: each
# fresh row above its message's stage and above every earlier row's; errors_so_far numbers the
# steps carrying an error, so a step without one takes the last one's (first_value of its
# group), or the stored one before any. The message ends as its last step left it.
_RECORD = (
    _INSERTED
    + f"""), fresh AS (
    SELECT DISTINCT ON (v.wamid, v.status) v.n, v.wamid, v.status, v.rank, v.at, v.code, v.title
    FROM v JOIN ins ON ins.wamid = v.wamid AND ins.status = v.status
    ORDER BY v.wamid, v.status, v.n
), locked AS (
    SELECT f.*, m.id AS message_id, m.contact_id, {_STORED_RANK} AS stored_rank,
        m.error_code AS stored_code, m.error_title AS stored_title
    FROM fresh AS f JOIN message AS m ON m.wamid = f.wamid
    ORDER BY m.id FOR UPDATE OF m
), ranked AS (
    SELECT l.*, max(l.rank) OVER (PARTITION BY l.wamid ORDER BY l.n
            ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING) AS earlier_rank
    FROM locked AS l
), steps AS (
    SELECT r.*, count(*) FILTER (WHERE r.code IS NOT NULL OR r.title IS NOT NULL)
        OVER (PARTITION BY r.message_id ORDER BY r.n) AS errors_so_far
    FROM ranked AS r WHERE r.rank > GREATEST(r.stored_rank, COALESCE(r.earlier_rank, 0))
), took AS (
    SELECT s.n, s.message_id, s.contact_id, s.wamid, s.status, s.at,
        CASE WHEN s.errors_so_far = 0 THEN s.stored_code ELSE first_value(s.code)
            OVER (PARTITION BY s.message_id, s.errors_so_far ORDER BY s.n) END AS code,
        CASE WHEN s.errors_so_far = 0 THEN s.stored_title ELSE first_value(s.title)
            OVER (PARTITION BY s.message_id, s.errors_so_far ORDER BY s.n) END AS title
    FROM steps AS s
), moved AS (
    UPDATE message AS m
    SET status = t.status, status_at = t.at, error_code = t.code, error_title = t.title
    FROM (SELECT DISTINCT ON (message_id) * FROM took ORDER BY message_id, n DESC) AS t
    WHERE m.id = t.message_id
    RETURNING m.id
)
"""
    + _RETURNED
)

# A body naming each message once, what a campaign's statuses mostly are: no status can follow
# another of its message, so a fresh row is a step when it is above the stored stage, and it
# keeps the stored error unless it brings one. The same locks, in the same order, with none of
# the general statement's windows: about a sixth less of the database's work.
_RECORD_EACH_ONCE = (
    _INSERTED
    + f"""), locked AS (
    SELECT v.n, v.wamid, v.status, v.rank, v.at, m.id AS message_id, m.contact_id,
        {_STORED_RANK} AS stored_rank,
        CASE WHEN v.code IS NULL AND v.title IS NULL THEN m.error_code ELSE v.code END AS code,
        CASE WHEN v.code IS NULL AND v.title IS NULL THEN m.error_title ELSE v.title END
            AS title
    FROM v JOIN ins ON ins.wamid = v.wamid JOIN message AS m ON m.wamid = v.wamid
    ORDER BY m.id FOR UPDATE OF m
), took AS (
    SELECT n, message_id, contact_id, wamid, status, at, code, title FROM locked
    WHERE rank > stored_rank
), moved AS (
    UPDATE message AS m
    SET status = t.status, status_at = t.at, error_code = t.code, error_title = t.title
    FROM took AS t WHERE m.id = t.message_id
    RETURNING m.id
)
"""
    + _RETURNED
)

_COLUMNS = (
    "wamid, status, phone_number_id, recipient_id, recipient_user_id, recipient_participant_id,"
    " meta_timestamp, error_code, error_title, raw, received_at"
)


def _one(error_set: str) -> str:
    """What Meta mostly sends, one status, in a statement of about half the database's work:
    the event's INSERT feeds the message's forward-only UPDATE, which runs only if the event
    was new. A status carrying an error sets it; one without leaves the message's as it was."""
    return (
        f"WITH new_event AS (INSERT INTO status_event ({_COLUMNS})"
        " VALUES (%(wamid)s, %(status)s, %(phone_number_id)s, %(recipient_id)s,"
        " %(recipient_user_id)s, %(participant)s, %(at)s, %(code)s, %(title)s,"
        " %(raw)s::jsonb, %(now)s)"
        " ON CONFLICT DO NOTHING RETURNING id),"
        " moved AS (UPDATE message AS m"
        f" SET status = %(status)s, status_at = %(at)s{error_set}"
        f" WHERE m.wamid = %(wamid)s AND {_STORED_RANK} < %(rank)s"
        " AND EXISTS (SELECT FROM new_event)"
        " RETURNING m.id, m.contact_id, m.error_code, m.error_title)"
        " SELECT EXISTS (SELECT FROM new_event), moved.id, moved.contact_id, moved.error_code,"
        " moved.error_title FROM (SELECT 1) AS one LEFT JOIN moved ON true"
    )


_ONE = {
    True: _one(", error_code = %(code)s, error_title = %(title)s"),
    False: _one(""),
}
# The same, for a status with nothing else in its transaction: straight on libpq.
_WHAT = "record statuses"  # what an error names, never the values
_ONE_ALONE = {
    has_error: NamedStatement.of(f"optin_status_{'error' if has_error else 'plain'}", sql)
    for has_error, sql in _ONE.items()
}


def record_statuses(connection: Connection, rows: Sequence[StatusRow]) -> Applied:
    """Keep each status once per (wamid, status) and move each message forward only, in the
    connection's transaction."""
    driver = connection.connection.driver_connection
    with as_sqlalchemy_errors(_WHAT, connection.dialect, driver, connection.invalidate):
        return _record(driver, rows)


def record_and_commit(engine: Engine, rows: Sequence[StatusRow]) -> Applied:
    """record_statuses in a transaction of its own, committed when it returns: the statement
    runs alone (one status, on a connection kept for it: storage.lone_connections) or in
    autocommit, so the body costs one round trip."""
    if len(rows) == 1:
        with _lone(engine) as kept:
            return _record_one_alone(kept, rows[0])
    pooled = engine.raw_connection()
    driver = pooled.driver_connection
    try:
        with as_sqlalchemy_errors(_WHAT, engine.dialect, driver, pooled.invalidate):
            driver.autocommit = True
            try:
                return _record(driver, rows)
            finally:
                if not driver.broken:  # a lost one is invalidated as its error is raised
                    driver.autocommit = False
    finally:
        if driver.autocommit and pooled.is_valid:
            pooled.invalidate()  # never handed on in autocommit: it is discarded
        pooled.close()


def record_each_and_commit(engine: Engine, rows: Sequence[StatusRow]) -> tuple[bool, ...]:
    """Which rows were new, each recorded by the one-status statement, all in one transaction
    committed when it returns (storage.status_groups: the statuses of requests served at once).

    One round trip and one COMMIT for them all. The rows go in wamid order, a message's own in
    the order given: every such transaction then locks its messages in the same order, so two
    wait for each other instead of deadlocking. Messages are independent of each other, so the
    order across them changes nothing; a message's statuses keep theirs.
    """
    if len(rows) == 1:
        return record_and_commit(engine, rows).new
    order = sorted(range(len(rows)), key=lambda i: rows[i].wamid)  # stable: arrival order kept
    statements = [(_ONE_ALONE[_has_error(rows[i])], _one_params(rows[i])) for i in order]
    with _lone(engine) as kept:
        results = run_together(kept, statements)
    new = [False] * len(rows)
    for i, [(inserted, *_)] in zip(order, results, strict=True):
        new[i] = inserted == "t"
    return tuple(new)


@contextmanager
def _lone(engine: Engine) -> Iterator[PoolProxiedConnection]:
    """A connection kept for lone statements (storage.lone_connections), its driver's errors
    raised as SQLAlchemy's; one lost is invalidated once (run_together may have done so)."""
    with lone_connection(engine) as kept:

        def lose(exc: BaseException) -> None:
            if kept.is_valid:
                kept.invalidate(exc)

        with as_sqlalchemy_errors(_WHAT, engine.dialect, kept.driver_connection, lose):
            yield kept


def _record(driver: psycopg.Connection[Any], rows: Sequence[StatusRow]) -> Applied:
    if len(rows) == 1:
        return _record_one(driver, rows[0])
    rows_document = document([_values(n, row) for n, row in enumerate(rows)])
    each_once = len({row.wamid for row in rows}) == len(rows)
    with driver.cursor() as cursor:
        cursor.execute(
            _RECORD_EACH_ONCE if each_once else _RECORD, {"rows": rows_document, "now": utcnow()}
        )
        returned = cursor.fetchall()
    inserted = {(wamid, status) for n, wamid, status, *_ in returned if n is None}
    steps = sorted((row for row in returned if row[0] is not None), key=lambda row: row[0])
    moved = tuple(
        Moved(
            message_id=message_id,
            contact_id=contact_id,
            wamid=wamid,
            status=status,
            error_code=code,
            error_title=title,
            occurred_at=at,
        )
        for _, wamid, status, message_id, contact_id, code, title, at in steps
    )
    return Applied(new=tuple(newness(rows, inserted)), moved=moved)


def _record_one(driver: psycopg.Connection[Any], row: StatusRow) -> Applied:
    with driver.cursor() as cursor:
        cursor.execute(_ONE[_has_error(row)], _one_params(row))
        new, *found = cursor.fetchone() or (False, None)
    return _applied_one(row, bool(new), found)


def _record_one_alone(pooled: PoolProxiedConnection, row: StatusRow) -> Applied:
    statement = _ONE_ALONE[_has_error(row)]
    [(new, message_id, contact_id, code, title)] = run_alone(pooled, statement, _one_params(row))
    found = (
        None
        if message_id is None or contact_id is None  # a message always has its contact
        else (message_id, int(contact_id), None if code is None else int(code), title)
    )
    return _applied_one(row, new == "t", found)


def _one_params(row: StatusRow) -> dict[str, Any]:
    """One status's parameters, for its statement run either way."""
    return {
        **_fields(row),
        "at": row.meta_timestamp,
        "raw": None if row.raw is None else dumps(row.raw),
        "now": utcnow(),
    }


def _has_error(row: StatusRow) -> bool:
    return row.error_code is not None or row.error_title is not None


def _applied_one(row: StatusRow, new: bool, found: Any) -> Applied:
    return Applied(new=(new,), moved=(step,) if (step := moved_by(row, found)) else ())


def _values(n: int, row: StatusRow) -> dict[str, Any]:
    """A row of the body's JSON document (the time written by json_rows, which refuses a naive
    one, faster than isoformat())."""
    values = _fields(row)  # one dict, not a second built around it: this runs per status
    values.update(n=n, at=row.meta_timestamp, raw=row.raw)
    return values


def _fields(row: StatusRow) -> dict[str, Any]:
    return {
        "wamid": row.wamid,
        "status": row.status,
        "rank": STATUS_RANK.get(row.status, 0),
        "phone_number_id": row.phone_number_id,
        "recipient_id": row.recipient_id,
        "recipient_user_id": row.recipient_user_id,
        "participant": row.recipient_participant_id,
        "code": row.error_code,
        "title": row.error_title,
    }
