"""INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL: unique keys stop double effects."""

from __future__ import annotations

from functools import lru_cache
from typing import Any

from sqlalchemy import Insert, Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_ignoring_conflict(
    session: Session, model: type[SQLModel], values: dict[str, Any]
) -> bool:
    """Insert one row unless it would break a unique key; True if the row was inserted."""
    statement = insert_ignoring(
        session.get_bind().dialect.name,
        model.__table__,  # type: ignore[attr-defined]
    )
    return session.execute(statement, values).first() is not None


@lru_cache(maxsize=64)
def insert_ignoring(dialect: str, table: Table, returning: tuple[str, ...] | None = None) -> Insert:
    """The statement for a table, built once (it is on every message's path): its values
    come as parameters. It returns the primary key of an inserted row, or the columns named.
    RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING."""
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    columns = table.primary_key if returning is None else [table.c[name] for name in returning]
    return insert(table).on_conflict_do_nothing().returning(*columns)
