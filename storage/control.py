"""Switches every process sees, kept in the database (so they survive restarts and Redis loss)."""

from __future__ import annotations

from sqlmodel import Session

from storage.models import ControlFlag
from storage.types import utcnow


def get_flag(session: Session, name: str) -> str | None:
    row = session.get(ControlFlag, name)
    return row.value if row else None


def set_flag(session: Session, name: str, value: str) -> None:
    row = session.get(ControlFlag, name) or ControlFlag(name=name, value=value)
    row.value = value
    row.updated_at = utcnow()
    session.add(row)


def clear_flag(session: Session, name: str) -> bool:
    row = session.get(ControlFlag, name)
    if row is None:
        return False
    session.delete(row)
    return True
