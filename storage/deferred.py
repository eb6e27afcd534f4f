"""New rows a transaction writes with SQL rather than through the session, held until its next
flush and inserted then, one multi-row INSERT per table.

A body of messages writes a dialogue row, a reply and an outbox row or two per customer: built as
ORM objects and flushed one by one, they were most of a first message's CPU. Outside a deferring
block a row is inserted at once, so a caller never needs to know which it is in.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import Table, insert
from sqlmodel import Session, SQLModel

import storage.models  # noqa: F401  (the tables, for their order)
from storage.db import is_postgres

_KEY = "deferred_rows"


def insert_row(session: Session, table: Table, row: dict[str, Any]) -> None:
    """Insert the row now, or at the next flush inside a deferring block."""
    pending: dict[Table, list[dict[str, Any]]] | None = session.info.get(_KEY)
    if pending is None:
        session.execute(_INSERT[table], row)
    else:
        pending.setdefault(table, []).append(row)


@contextmanager
def deferring(session: Session) -> Iterator[None]:
    """Hold insert_row's rows until flush(session), or until the block ends without an error."""
    session.info[_KEY] = {}
    try:
        yield
        _write(session)
    finally:
        session.info.pop(_KEY, None)


def flush(session: Session) -> None:
    """The session's flush, and the rows held for it: what follows reads them all back."""
    _write(session)
    session.flush()


def _write(session: Session) -> None:
    pending: dict[Table, list[dict[str, Any]]] | None = session.info.get(_KEY)
    if not pending:
        return
    # Parents first (a reply's message before its outbox row), as the schema orders tables.
    held = [(table, rows) for table in _TABLE_ORDER if (rows := pending.pop(table, None))]
    assert not pending, f"no order known for {list(pending)}"
    if is_postgres(session.get_bind()) and (len(held) > 1 or len(held[0][1]) > 1):
        statement, params = _in_one_statement(held)
        session.connection().exec_driver_sql(statement, params)
        return
    for table, rows in held:
        if len(rows) == 1:
            session.execute(_INSERT[table], rows[0])
        else:
            # RETURNING makes the rows one multi-row INSERT (SQLAlchemy's insertmanyvalues)
            # rather than a statement each.
            session.execute(_INSERT_RETURNING[table], rows).all()


def _in_one_statement(held: list[tuple[Table, list[dict[str, Any]]]]) -> tuple[str, dict[str, str]]:
    """PostgreSQL: every held row in one statement, each table's rows one JSON document read
    into rows of that table (json_populate_recordset). The foreign keys are checked when the
    whole statement ends, so a reply's outbox row may go in beside its message."""
    shape = tuple((table.name, tuple(rows[0])) for table, rows in held)
    params = {f"t{n}": json.dumps(rows, default=_json_value) for n, (_, rows) in enumerate(held)}
    return _statement(shape), params


@lru_cache(maxsize=64)
def _statement(shape: tuple[tuple[str, tuple[str, ...]], ...]) -> str:
    """Constant for a given set of tables and columns, so the server prepares it once."""
    inserts = []
    for n, (table, columns) in enumerate(shape):
        names = ", ".join(f'"{column}"' for column in columns)
        inserts.append(
            f'INSERT INTO "{table}" ({names}) SELECT {names} '
            f'FROM json_populate_recordset(NULL::"{table}", %(t{n})s::json)'
        )
    *first, last = inserts
    ctes = ", ".join(f"t{n} AS ({insert})" for n, insert in enumerate(first))
    return f"WITH {ctes} {last}" if ctes else last


def _json_value(value: object) -> str:
    if isinstance(value, datetime):
        if value.tzinfo is None:
            raise ValueError("naive datetime given; every stored time must carry a zone")
        return value.isoformat()
    raise TypeError(f"{type(value).__name__} cannot be stored as JSON")


_TABLE_ORDER = tuple(SQLModel.metadata.sorted_tables)
# Built once: they are on every message's path.
_INSERT = {table: insert(table) for table in _TABLE_ORDER}
_INSERT_RETURNING = {table: insert(table).returning(*table.primary_key) for table in _TABLE_ORDER}
