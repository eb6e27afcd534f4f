"""Switches every process sees, kept in the database (so they survive restarts and Redis loss),
and the heartbeats by which the dispatchers count each other."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta

from sqlalchemy import delete
from sqlmodel import Session, col, func, select

from storage.models import ControlFlag
from storage.types import utcnow


def get_flag(session: Session, name: str) -> str | None:
    row = session.get(ControlFlag, name)
    return row.value if row else None


def set_flag(session: Session, name: str, value: str, *, now: datetime | None = None) -> None:
    row = session.get(ControlFlag, name) or ControlFlag(name=name, value=value)
    row.value = value
    row.updated_at = now or utcnow()
    session.add(row)


def clear_flag(session: Session, name: str) -> bool:
    row = session.get(ControlFlag, name)
    if row is None:
        return False
    session.delete(row)
    return True


# Each running dispatcher's heartbeat is a flag of its own, so that every process can count them.
HEARTBEAT_PREFIX = "dispatcher:"
_DEAD_AFTER = timedelta(hours=1)  # a heartbeat this old is a process long gone: pruned


def beat(session: Session, *, worker: str, now: datetime) -> None:
    """This dispatcher is running now (its row, named by a digest of the worker's name)."""
    set_flag(session, _heartbeat_name(worker), worker[:200], now=now)


def live_dispatchers(session: Session, *, since: datetime) -> int:
    """How many dispatchers have beaten since then; heartbeats long dead are pruned."""
    heartbeats = col(ControlFlag.name).startswith(HEARTBEAT_PREFIX)
    session.execute(
        delete(ControlFlag).where(heartbeats, col(ControlFlag.updated_at) < since - _DEAD_AFTER)
    )
    return session.exec(
        select(func.count()).where(heartbeats, col(ControlFlag.updated_at) >= since)
    ).one()


def forget(session: Session, *, worker: str) -> bool:
    """This dispatcher stopped: its share of the rate goes back to the others at once."""
    return clear_flag(session, _heartbeat_name(worker))


def _heartbeat_name(worker: str) -> str:
    return HEARTBEAT_PREFIX + hashlib.sha256(worker.encode()).hexdigest()[:32]
