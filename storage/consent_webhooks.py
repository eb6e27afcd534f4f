"""The consent webhook outbox (C29): the business's other systems hear every consent change.

A row is written in the transaction that appends the ledger row (or erases the contact) it
reports, so a change is never told without having happened, nor happens without being told.
Dispatchers (bot.webhooks) claim the oldest row of each contact only, so one contact's changes
arrive in order; a row is deleted once the receiver answered 2xx (at least once).

Whether rows are written at all is a property of the engine (CONSENT_WEBHOOK_URL set or not,
see `enable`): every writer of the ledger reaches it through its session, without each call
site having to be told.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, delete, exists, func, or_, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import aliased
from sqlmodel import Session, col, select

from storage.bulk import any_of, insert_rows
from storage.db import is_postgres
from storage.models import ConsentWebhook, Contact, new_id
from storage.types import utcnow

OPTION = "optin_consent_webhooks"
GRANTED = "consent.granted"
WITHDRAWN = "consent.withdrawn"
ERASED = "contact.erased"


def enable(engine: Engine) -> None:
    """Queue a webhook with every ledger change and erasure made through this engine."""
    engine.update_execution_options(**{OPTION: True})


def enabled(session: Session) -> bool:
    bind: Any = session.get_bind()
    engine = getattr(bind, "engine", bind)
    return bool(engine.get_execution_options().get(OPTION))


@dataclass(frozen=True, slots=True, kw_only=True)
class Change:
    """One consent change or erasure to report, about one contact."""

    contact_id: int
    type: str
    occurred_at: datetime
    category: str | None
    source: str
    entry_point: str | None = None


_COLUMNS = ("event_id", "contact_id", "type", "body", "created_at", "due_at", "attempts")


def queue(session: Session, changes: Iterable[Change]) -> int:
    """Write the webhook rows for these changes in the caller's transaction; how many.

    The contact's identifiers are read now: after an erasure they are gone from every table.
    """
    if not enabled(session):
        return 0
    changes = list(changes)
    if not changes:
        return 0
    now = utcnow()
    known = _identities(session, {change.contact_id for change in changes})
    rows = []
    for change in changes:
        wa_id, user_id = known.get(change.contact_id, (None, None))
        event_id = new_id()
        body: dict[str, Any] = {
            "id": event_id,
            "type": change.type,
            "occurred_at": change.occurred_at.isoformat(),
            "contact": {"wa_id": wa_id, "user_id": user_id},
            "category": change.category,
            "source": change.source,
        }
        if change.entry_point:
            body["entry_point"] = change.entry_point
        encoded = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        rows.append((event_id, change.contact_id, change.type, encoded, now, now, 0))
    insert_rows(session, ConsentWebhook, _COLUMNS, rows)
    return len(rows)


def _identities(
    session: Session, contact_ids: set[int]
) -> dict[int, tuple[str | None, str | None]]:
    """(wa_id, user_id) of these contacts, in one query."""
    rows = session.exec(
        select(Contact.id, Contact.wa_id, Contact.user_id).where(
            any_of(session, Contact.id, contact_ids)
        )
    )
    return {contact_id: (wa_id, user_id) for contact_id, wa_id, user_id in rows}


def claim(session: Session, *, now: datetime, lease: timedelta, limit: int) -> list[ConsentWebhook]:
    """Due rows that are the oldest of their contact, held for `lease`; committed by the caller.

    While a contact's oldest row waits for its retry, its later ones wait behind it.
    """
    earlier = aliased(ConsentWebhook)
    statement = (
        select(ConsentWebhook)
        .where(
            col(ConsentWebhook.due_at) <= now,
            or_(
                col(ConsentWebhook.claimed_until).is_(None),
                col(ConsentWebhook.claimed_until) < now,
            ),
            ~exists().where(
                and_(
                    earlier.contact_id == ConsentWebhook.contact_id,
                    col(earlier.id) < ConsentWebhook.id,
                )
            ),
        )
        .order_by(col(ConsentWebhook.id))
        .limit(limit)
    )
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update(skip_locked=True, of=ConsentWebhook)
    rows = list(session.exec(statement))
    if rows:
        session.execute(
            update(ConsentWebhook)
            .where(col(ConsentWebhook.id).in_([r.id for r in rows]))
            .values(claimed_until=now + lease)
        )
    return rows


def delivered(session: Session, webhook_id: int) -> None:
    session.execute(delete(ConsentWebhook).where(col(ConsentWebhook.id) == webhook_id))


def retry_later(session: Session, webhook_id: int, *, due_at: datetime, error: str) -> None:
    session.execute(
        update(ConsentWebhook)
        .where(col(ConsentWebhook.id) == webhook_id)
        .values(
            attempts=ConsentWebhook.attempts + 1,
            due_at=due_at,
            last_error=error[:1000],
            claimed_until=None,
        )
    )


@dataclass(frozen=True, slots=True)
class WebhookBacklog:
    waiting: int  # rows not yet answered 2xx
    failing: int  # of them, rows whose last delivery failed
    failed_attempts: int  # failed deliveries of the rows still waiting
    oldest_at: datetime | None  # when the oldest waiting row was queued


def backlog(session: Session) -> WebhookBacklog:
    waiting, failing, attempts, oldest = session.execute(
        select(
            func.count(),
            func.count().filter(col(ConsentWebhook.attempts) > 0),
            func.coalesce(func.sum(ConsentWebhook.attempts), 0),
            func.min(ConsentWebhook.created_at),
        )
    ).one()
    return WebhookBacklog(int(waiting), int(failing), int(attempts), oldest)
