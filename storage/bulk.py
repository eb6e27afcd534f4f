"""Statements for many rows at once, the fast way on each database: on PostgreSQL, new rows go in
with COPY and a list of keys is one array parameter (`= ANY(:keys)`) instead of one bind
parameter per key; on SQLite, a plain executemany and IN do the same job.

Both run inside the caller's transaction, on the session's own connection.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from typing import Any

from psycopg.types.json import Jsonb
from sqlalchemy import Integer, String, any_, bindparam, insert
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel

from storage.db import is_postgres


def any_of(session: Session, column: Any, values: Collection[Any]) -> ColumnElement[bool]:
    """`column IN values`, as one array parameter on PostgreSQL (a thousand keys, one bind)."""
    if not is_postgres(session.get_bind()):
        return column.in_(list(values))
    element = Integer() if isinstance(column.type, Integer) else String()
    keys = bindparam(None, list(values), type_=ARRAY(element))
    return column == any_(keys)


def insert_rows(
    session: Session, model: type[SQLModel], columns: Sequence[str], rows: Iterable[Sequence[Any]]
) -> None:
    """Insert rows (values in `columns` order) that break no unique key: COPY on PostgreSQL.

    The column types' Python-side conversions are not applied: datetimes must be aware, and a
    dict goes to a JSON column.
    """
    table = model.__table__  # type: ignore[attr-defined]
    if not is_postgres(session.get_bind()):
        values = [dict(zip(columns, row, strict=True)) for row in rows]
        if values:
            session.execute(insert(table), values)
        return
    raw: Any = session.connection().connection.dbapi_connection
    statement = f'COPY "{table.name}" ({", ".join(columns)}) FROM STDIN'
    with raw.cursor() as cursor, cursor.copy(statement) as copy:
        for row in rows:
            copy.write_row([Jsonb(v) if isinstance(v, dict | list) else v for v in row])
