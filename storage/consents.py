"""The consent ledger (append-only) and the current state derived from it."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from flows.policy import ConsentChange, ConsentSource, Recipient
from storage.models import Consent, ConsentEvent, Contact
from storage.types import utcnow


def current_consents(session: Session, *, contact_id: int) -> dict[str, Consent]:
    rows = session.exec(select(Consent).where(Consent.contact_id == contact_id))
    return {row.category: row for row in rows}


def granted_categories(session: Session, *, contact_id: int) -> frozenset[str]:
    rows = session.exec(
        select(Consent.category).where(Consent.contact_id == contact_id, Consent.granted)
    )
    return frozenset(rows)


def append_decision(
    session: Session,
    *,
    contact_id: int,
    category: str,
    granted: bool,
    source: str,
    occurred_at: datetime,
    text: str,
    text_version: str,
    evidence: dict[str, Any],
) -> ConsentEvent:
    """Append one ledger row and move the current state, in the caller's transaction."""
    recorded_at = utcnow()
    event = ConsentEvent(
        contact_id=contact_id,
        category=category,
        granted=granted,
        source=source,
        occurred_at=occurred_at,
        recorded_at=recorded_at,
        text=text,
        text_version=text_version,
        evidence=evidence,
    )
    session.add(event)
    current = session.get(Consent, (contact_id, category))
    if current is None:
        current = Consent(
            contact_id=contact_id,
            category=category,
            granted=granted,
            source=source,
            updated_at=occurred_at,
        )
    elif occurred_at < current.updated_at:
        # An older decision arriving late is kept in the ledger but does not override a newer one.
        session.flush()
        return event
    current.granted, current.source, current.updated_at = granted, source, occurred_at
    if granted:
        current.granted_at = occurred_at
        if source == ConsentSource.WHATSAPP:
            # An explicit opt-in on WhatsApp is itself the confirmation a double opt-in awaits.
            current.confirmed = True
    session.add(current)
    session.flush()
    return event


def record(
    session: Session, *, contact_id: int, changes: Iterable[ConsentChange]
) -> list[ConsentEvent]:
    """Append the policy's rows for one decision, in the caller's transaction."""
    return [
        append_decision(
            session,
            contact_id=contact_id,
            category=change.category,
            granted=change.granted,
            source=change.source,
            occurred_at=change.occurred_at,
            text=change.text,
            text_version=change.text_version,
            evidence=dict(change.evidence),
        )
        for change in changes
    ]


def ledger_of(session: Session, *, contact_id: int) -> list[ConsentEvent]:
    return list(
        session.exec(
            select(ConsentEvent)
            .where(ConsentEvent.contact_id == contact_id)
            .order_by(col(ConsentEvent.occurred_at), col(ConsentEvent.id))
        )
    )


def withdraw(
    session: Session,
    *,
    contact_id: int,
    categories: tuple[str, ...] | list[str],
    source: str,
    occurred_at: datetime,
    text: str,
    text_version: str,
    evidence: dict[str, Any],
) -> list[str]:
    """Withdraw those of categories that are granted now; the ones withdrawn."""
    granted = granted_categories(session, contact_id=contact_id)
    withdrawn = [c for c in categories if c in granted]
    for category in withdrawn:
        append_decision(
            session,
            contact_id=contact_id,
            category=category,
            granted=False,
            source=source,
            occurred_at=occurred_at,
            text=text,
            text_version=text_version,
            evidence=evidence,
        )
    return withdrawn


def recipient_facts(session: Session, contact: Contact | None, *, suppressed: bool) -> Recipient:
    """What the consent policy needs to know about one person, from the current state."""
    if contact is None:
        return Recipient(known=False, suppressed=suppressed)
    rows = current_consents(session, contact_id=contact.id)
    return Recipient(
        known=True,
        suppressed=suppressed,
        sendable=frozenset(c for c, row in rows.items() if row.granted and row.confirmed),
        awaiting_confirmation=frozenset(
            c for c, row in rows.items() if row.granted and not row.confirmed
        ),
        marketing_held_until=contact.marketing_held_until,
        last_inbound_at=contact.last_inbound_at,
    )


def may_send(session: Session, *, contact_id: int, category: str) -> bool:
    """Granted now, and confirmed where a double opt-in is pending."""
    row = session.get(Consent, (contact_id, category))
    return bool(row and row.granted and row.confirmed)


def consent_totals(session: Session) -> list[tuple[str, bool, bool, int]]:
    """(category, granted, confirmed, contacts) over every contact's current consent."""
    rows = session.execute(
        select(Consent.category, Consent.granted, Consent.confirmed, func.count()).group_by(
            Consent.category, Consent.granted, Consent.confirmed
        )
    ).all()
    return [(category, granted, confirmed, count) for category, granted, confirmed, count in rows]
