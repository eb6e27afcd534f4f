"""Forgetting what is kept only for a while: Meta's raw status events and unknown events, bodies
kept for support because they could not be parsed, and idempotency records past their day.

Consent evidence is never pruned: the ledger, preference events, messages, erasure records stay.
Rows go in batches, each in a transaction of its own, so a large backlog never holds long locks.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import SQLModel, col

from storage.models import FailedPayload, IdempotencyRecord, OtherEvent, StatusEvent

BATCH = 5000


@dataclass(frozen=True, slots=True)
class Pruned:
    status_events: int
    other_events: int
    failed_payloads: int
    idempotency_records: int


def prune(
    engine: Engine,
    *,
    events_before: datetime,
    idempotency_before: datetime,
    dry_run: bool = False,
) -> Pruned:
    """Delete (or, with dry_run, count) what is older than its limit; how many rows."""
    act = _count if dry_run else _delete
    return Pruned(
        status_events=act(engine, StatusEvent, col(StatusEvent.received_at) < events_before),
        other_events=act(engine, OtherEvent, col(OtherEvent.received_at) < events_before),
        failed_payloads=act(engine, FailedPayload, col(FailedPayload.received_at) < events_before),
        idempotency_records=act(
            engine, IdempotencyRecord, col(IdempotencyRecord.created_at) < idempotency_before
        ),
    )


def _count(engine: Engine, model: type[SQLModel], older: ColumnElement[bool]) -> int:
    with engine.connect() as connection:
        return int(
            connection.execute(select(func.count()).select_from(model).where(older)).scalar_one()
        )


def _delete(engine: Engine, model: type[SQLModel], older: ColumnElement[bool]) -> int:
    table = model.__table__  # type: ignore[attr-defined]
    key = next(iter(table.primary_key.columns))
    total = 0
    while True:
        batch = select(key).where(older).limit(BATCH).scalar_subquery()
        with engine.begin() as connection:
            deleted = connection.execute(delete(table).where(key.in_(batch))).rowcount or 0
        total += deleted
        if deleted < BATCH:
            return total
