"""Rows a transaction writes with SQL rather than through the session, held until its next flush
and written then: on PostgreSQL all in one statement, elsewhere one statement per table. Held
until the commit of a deferred_transaction, that one statement goes with the COMMIT.

A body of messages writes a dialogue row, a reply and an outbox row or two per customer, and sets
a new customer's language: built as ORM objects and flushed one by one, they were most of a first
message's CPU. Outside a deferring block a row is written at once, so a caller never needs to know
which it is in.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, bindparam, insert, update
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.sql.dml import Update
from sqlmodel import Session, SQLModel

import storage.models  # noqa: F401  (the tables, for their order)
from storage.db import is_postgres, session_scope
from storage.json_rows import document, dumps, insert_rows, row_of, rows_of
from storage.libpq_pipeline import commit_with

_KEY = "deferred_rows"
_Rows = list[tuple[Table, list[dict[str, Any]]]]


@dataclass
class _Held:
    inserts: dict[Table, list[dict[str, Any]]] = field(default_factory=dict)
    # The held inserts by table and id: a change to a row not written yet goes into it.
    inserted: dict[tuple[Table, object], dict[str, Any]] = field(default_factory=dict)
    # By table, then by id: a later change to the same row's columns wins.
    updates: dict[Table, dict[object, dict[str, Any]]] = field(default_factory=dict)


def insert_row(session: Session, table: Table, row: dict[str, Any]) -> None:
    """Insert the row now, or at the next flush inside a deferring block."""
    held: _Held | None = session.info.get(_KEY)
    if held is None:
        session.execute(_INSERT[table], row)
    else:
        held.inserts.setdefault(table, []).append(row)
        if (key := _KEY_COLUMN.get(table)) is not None and key in row:
            held.inserted[table, row[key]] = row


def update_row(session: Session, table: Table, row_id: object, values: dict[str, Any]) -> None:
    """Set these columns of the row whose key (the table's one primary key column) is row_id,
    now or at the next flush inside a deferring block."""
    held: _Held | None = session.info.get(_KEY)
    if held is None:
        session.execute(_update(table, tuple(values)), {**values, "row_id": row_id})
    elif (table, row_id) in held.inserted:
        held.inserted[table, row_id].update(values)  # one statement cannot update its insert
    else:
        held.updates.setdefault(table, {}).setdefault(row_id, {}).update(values)


@contextmanager
def deferring(session: Session) -> Iterator[None]:
    """Hold the rows until flush(session), or until the block ends without an error."""
    session.info[_KEY] = _Held()
    try:
        yield
        write_held(session)
    finally:
        session.info.pop(_KEY, None)


def flush(session: Session) -> None:
    """The session's flush, and the rows held for it: what follows reads them all back."""
    write_held(session)
    session.flush()


def write_held(session: Session) -> None:
    """Write the rows held so far (none outside a deferring block), without the ORM's flush."""
    taken = _take_held(session)
    if taken is None:
        return
    inserts, updates = taken
    bind = session.get_bind()
    if is_postgres(bind) and sum(len(rows) for _, rows in (*inserts, *updates)) > 1:
        session.connection().exec_driver_sql(*_in_one_statement(inserts, updates))
        return
    for table, rows in updates:
        for row in rows:  # rarely more than one: SQLite writes locally
            key = _KEY_COLUMN[table]
            values = {k: v for k, v in row.items() if k != key}
            session.execute(_update(table, tuple(values)), {**values, "row_id": row[key]})
    sqlite = bind.dialect.name == "sqlite"
    for table, rows in inserts:
        if sqlite and not _DEFAULTED[table].difference(rows[0]):
            _insert_plainly(session, table, rows)
        elif len(rows) == 1:
            session.execute(_INSERT[table], rows[0])
        else:
            # RETURNING makes the rows one multi-row INSERT (SQLAlchemy's insertmanyvalues)
            # rather than a statement each.
            session.execute(_INSERT_RETURNING[table], rows).all()


@contextmanager
def deferred_transaction(engine: Engine) -> Iterator[Session]:
    """session_scope with its rows held (as in a deferring block) until the commit. On
    PostgreSQL, when the ORM has nothing of its own left to write, the held rows' one statement
    goes with the COMMIT: one round trip for both."""
    with session_scope(engine) as session:
        session.info[_KEY] = _Held()
        try:
            yield session
            _write_held_committing(session)
        finally:
            session.info.pop(_KEY, None)


def _write_held_committing(session: Session) -> None:
    if not is_postgres(session.get_bind()) or session.new or session.dirty or session.deleted:
        write_held(session)  # the session's commit writes the ORM's rows after them
        return
    taken = _take_held(session)
    if taken is not None:
        commit_with(session.connection(), *_in_one_statement(*taken))


def _take_held(session: Session) -> tuple[_Rows, _Rows] | None:
    """The held inserts and updates grouped by table, parents first, and by the columns they
    set; none left held."""
    held: _Held | None = session.info.get(_KEY)
    if held is None or not (held.inserts or held.updates):
        return None
    held.inserted.clear()
    # Parents first (a reply's message before its outbox row), as the schema orders tables.
    inserts = [
        (t, group)
        for t in _TABLE_ORDER
        if t in held.inserts
        for group in _by_columns(held.inserts.pop(t))
    ]
    updates = [
        (t, group)
        for t in _TABLE_ORDER
        if t in held.updates
        for group in _by_columns(
            [{**values, _KEY_COLUMN[t]: row_id} for row_id, values in held.updates.pop(t).items()]
        )
    ]
    assert not held.inserts and not held.updates, "a table outside the schema"
    return inserts, updates


def _insert_plainly(session: Session, table: Table, rows: list[dict[str, Any]]) -> None:
    """SQLite: the rows as driver SQL, executemany, each value through its column's own bind
    processor. A compiled INSERT's execution cost four times the driver's work on each row."""
    connection = session.connection()
    sql, processors = _plain_insert(table, tuple(rows[0]), connection.dialect)
    connection.exec_driver_sql(
        sql,
        [
            tuple(
                value if process is None else process(value)
                for process, value in zip(processors, row.values(), strict=True)
            )
            for row in rows
        ],
    )


@lru_cache(maxsize=64)
def _plain_insert(
    table: Table, columns: tuple[str, ...], dialect: Dialect
) -> tuple[str, tuple[Callable[[Any], Any] | None, ...]]:
    names = ", ".join(f'"{column}"' for column in columns)
    marks = ", ".join("?" for _ in columns)  # SQLite's paramstyle (qmark)
    processors = tuple(table.c[column].type.bind_processor(dialect) for column in columns)
    return f'INSERT INTO "{table.name}" ({names}) VALUES ({marks})', processors


def _by_columns(rows: list[dict[str, Any]]) -> list[list[dict[str, Any]]]:
    """The rows grouped by the columns they set: a statement writes the same columns for all."""
    groups: dict[tuple[str, ...], list[dict[str, Any]]] = {}
    for row in rows:
        groups.setdefault(tuple(row), []).append(row)
    return list(groups.values())


def _in_one_statement(inserts: _Rows, updates: _Rows) -> tuple[str, dict[str, str]]:
    """PostgreSQL: every held row in one statement, each table's rows one JSON document read
    into rows of that table (json_populate_recordset). The foreign keys are checked when the
    whole statement ends, so a reply's outbox row may go in beside its message."""
    held = [*updates, *inserts]
    # An update of one row reads it as a row, not a document of rows (json_rows.row_of).
    single = [n < len(updates) and len(rows) == 1 for n, (_, rows) in enumerate(held)]
    shape = tuple(
        (table.name, tuple(rows[0]), n < len(updates), single[n])
        for n, (table, rows) in enumerate(held)
    )
    params = {
        f"t{n}": dumps(rows[0]) if single[n] else document(rows) for n, (_, rows) in enumerate(held)
    }
    return _statement(shape), params


@lru_cache(maxsize=64)
def _statement(shape: tuple[tuple[str, tuple[str, ...], bool, bool], ...]) -> str:
    """Constant for a given set of tables and columns, so the server prepares it once.

    The parts of one statement run in no set order, so each table's rows are made to wait for
    the table before them (parents first): two bodies creating the same person then meet on
    the person's row, and the later fails on their number once the earlier commits. Met on a
    child row first (the message), each would wait for the other: a deadlock.
    """
    parts = []
    before: int | None = None  # the last insert so far
    for n, (table, columns, is_update, single) in enumerate(shape):
        if is_update:
            key = _KEY_BY_NAME[table]
            sets = ", ".join(f'"{c}" = v."{c}"' for c in columns if c != key)
            rows = (row_of if single else rows_of)(table, f"t{n}")
            parts.append(
                f'UPDATE "{table}" SET {sets} FROM {rows} AS v WHERE "{table}"."{key}" = v."{key}"'
            )
            continue
        if before is not None:
            parts[before] += " RETURNING 1"  # read by this insert, so it returns its rows
        parts.append(
            insert_rows(table, columns, f"t{n}", after=None if before is None else f"t{before}")
        )
        before = n
    *first, last = parts
    ctes = ", ".join(f"t{n} AS ({part})" for n, part in enumerate(first))
    return f"WITH {ctes} {last}" if ctes else last


@lru_cache(maxsize=16)
def _update(table: Table, columns: tuple[str, ...]) -> Update:
    return (
        update(table)
        .where(table.c[_KEY_COLUMN[table]] == bindparam("row_id"))
        .values({column: bindparam(column) for column in columns})
    )


_TABLE_ORDER = tuple(SQLModel.metadata.sorted_tables)
# Built once: they are on every message's path.
_INSERT = {table: insert(table) for table in _TABLE_ORDER}
_INSERT_RETURNING = {table: insert(table).returning(*table.primary_key) for table in _TABLE_ORDER}
# Each table's one primary key column, by which a held change finds its row.
_KEY_COLUMN = {
    table: column.name
    for table in _TABLE_ORDER
    if len(table.primary_key.columns) == 1
    for column in table.primary_key.columns
}
_KEY_BY_NAME = {table.name: key for table, key in _KEY_COLUMN.items()}
# The columns SQLAlchemy fills in Python when a row leaves them out: a row that does is written
# by a compiled INSERT, which fills them.
_DEFAULTED = {
    table: frozenset(column.name for column in table.columns if column.default is not None)
    for table in _TABLE_ORDER
}
