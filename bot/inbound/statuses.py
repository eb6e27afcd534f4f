"""A body's delivery statuses stored and acted on: together in one transaction, or, should the
database refuse one, each apart so that only that one is kept for support."""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass
from functools import partial

from sqlmodel import Session

from bot.inbound.apart import KEPT, keep_apart
from bot.meta.events import Status
from bot.outbound.refusals import apply_refusal
from bot.wiring.services import Services
from flows.catalog import Catalog
from storage.db import session_scope, storage_unavailable
from storage.statuses import StatusRow, record_grouped, record_statuses

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class StatusCounts:
    stored: int = 0
    duplicates: int = 0
    kept: int = 0  # refused by the database, kept for support


def store_statuses(services: Services, statuses: tuple[Status, ...]) -> StatusCounts:
    """Apply a body's statuses together (storage.statuses); each apart if that is refused."""
    if not statuses:
        return StatusCounts()
    rows = [_status_row(status) for status in statuses]
    try:
        if any(row.status == "failed" for row in rows):
            with session_scope(services.engine) as session:
                new = _apply(session, services.catalog, rows)
        else:  # nothing to act on: committed with whatever statuses arrive meanwhile
            new = sum(record_grouped(services.engine, rows))
    except Exception as exc:
        if storage_unavailable(exc):
            raise
        log.warning("statuses refused together (%s); storing each apart", type(exc).__name__)
        return _store_each_apart(services, statuses, rows)
    return StatusCounts(stored=new, duplicates=len(rows) - new)


def _apply(session: Session, catalog: Catalog, rows: Sequence[StatusRow]) -> int:
    """Record the rows and act on each failure Meta reports (a marketing refusal, C13); how
    many rows were new."""
    applied = record_statuses(session, rows)
    for step in applied.moved:
        if step.status == "failed":
            apply_refusal(
                session,
                catalog,
                contact_id=step.contact_id,
                code=step.error_code,
                message_id=step.message_id,
                occurred_at=step.occurred_at,
                wamid=step.wamid,
            )
    return sum(applied.new)


def _store_each_apart(
    services: Services, statuses: tuple[Status, ...], rows: list[StatusRow]
) -> StatusCounts:
    stored = duplicates = kept = 0
    with session_scope(services.engine) as session:
        for status, row in zip(statuses, rows, strict=True):
            act = partial(_apply, session, services.catalog, [row])
            outcome = keep_apart(session, act, raw=status.raw, what=f"status of {status.wamid}")
            if outcome is KEPT:
                kept += 1
            elif outcome:
                stored += 1
            else:
                duplicates += 1
    return StatusCounts(stored=stored, duplicates=duplicates, kept=kept)


def _status_row(status: Status) -> StatusRow:
    error = status.errors[0] if status.errors else None
    return StatusRow(
        wamid=status.wamid,
        status=status.status.value,
        meta_timestamp=status.timestamp,
        phone_number_id=status.phone_number_id,
        recipient_id=status.recipient_id or status.recipient_user_id,
        recipient_user_id=status.recipient_user_id,
        recipient_participant_id=status.participant,
        error_code=error.code if error else None,
        error_title=(error.title or error.message) if error else None,
        raw=dict(status.raw),
    )
