"""INSERT ... ON CONFLICT DO NOTHING on SQLite and PostgreSQL: unique keys stop double effects."""

from __future__ import annotations

from typing import Any

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, SQLModel


def insert_ignoring_conflict(
    session: Session, model: type[SQLModel], values: dict[str, Any]
) -> bool:
    """Insert one row unless it would break a unique key; True if the row was inserted."""
    dialect = session.get_bind().dialect.name
    insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
    table = model.__table__  # type: ignore[attr-defined]
    # RETURNING, not rowcount: drivers disagree on rowcount for ON CONFLICT DO NOTHING.
    statement = (
        insert(table).values(**values).on_conflict_do_nothing().returning(*table.primary_key)
    )
    return session.execute(statement).first() is not None
