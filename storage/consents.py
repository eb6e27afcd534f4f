"""The consent ledger (append-only) and the current state derived from it."""

from __future__ import annotations

from collections.abc import Collection, Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func, insert
from sqlmodel import Session, col, select

from flows.policy import ConsentChange, ConsentSource, Recipient
from storage import consent_webhooks
from storage.bulk import any_of, insert_rows
from storage.deferred import write_held
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
    change = ConsentChange(
        category=category,
        granted=granted,
        source=ConsentSource(source),
        text=text,
        text_version=text_version,
        occurred_at=occurred_at,
        evidence=evidence,
    )
    return record_many(session, [(contact_id, change)]).events[0]


def record(
    session: Session,
    *,
    contact_id: int,
    changes: Iterable[ConsentChange],
    unconfirmed: Collection[str] = (),
) -> list[ConsentEvent]:
    """Append the policy's rows for one decision, in the caller's transaction.

    `unconfirmed`: categories whose grant waits for a double opt-in tap; the business hears
    of them when the tap confirms them (storage.consent_webhooks), not before.
    """
    decisions = [(contact_id, change) for change in changes]
    quiet = {(contact_id, category) for category in unconfirmed}
    return record_many(session, decisions, unconfirmed=quiet).events


@dataclass(slots=True, kw_only=True)
class _NewCurrent:
    """The current state of a (contact, category) that had none: inserted in one statement
    with the others of its batch instead of as an ORM object."""

    contact_id: int
    category: str
    granted: bool
    source: str
    updated_at: datetime
    granted_at: datetime | None = None
    confirmed: bool = True


@dataclass(slots=True)
class Recorded:
    events: list[ConsentEvent]  # empty unless asked for (returning=True)
    # The current state of every (contact_id, category) written, after the batch.
    current: dict[tuple[int, str], Consent | _NewCurrent]


def record_many(
    session: Session,
    decisions: Sequence[tuple[int, ConsentChange]],
    *,
    returning: bool = True,
    unconfirmed: Collection[tuple[int, str]] = (),
) -> Recorded:
    """Append ledger rows for any number of contacts, in order, and move each current state:
    the one way the ledger is written, for one tap as for a million imported rows.

    A decision older than the current state is kept in the ledger but does not override it.
    Each one that becomes the current state is reported to the business's webhook, unless its
    (contact_id, category) is in `unconfirmed`.
    """
    if not decisions:
        return Recorded([], {})
    # The ledger refers to the contacts and the business's webhook reads them: a new contact's
    # row held for the transaction's write (storage.deferred) goes in first.
    write_held(session)
    current = _current_states(session, {contact_id for contact_id, _ in decisions})
    created: dict[tuple[int, str], _NewCurrent] = {}
    moved: list[consent_webhooks.Change] = []
    for contact_id, change in decisions:
        key = (contact_id, change.category)
        row = current.get(key)
        if row is None:
            row = created[key] = _NewCurrent(
                contact_id=contact_id,
                category=change.category,
                granted=change.granted,
                source=change.source,
                updated_at=change.occurred_at,
            )
            current[key] = row
        elif change.occurred_at < row.updated_at:
            continue  # an older decision arriving late
        row.granted, row.source = change.granted, str(change.source)
        row.updated_at = change.occurred_at
        if change.granted:
            row.granted_at = change.occurred_at
            if change.source == ConsentSource.WHATSAPP:
                # An explicit opt-in on WhatsApp is itself the confirmation a double opt-in awaits.
                row.confirmed = True
        if isinstance(row, Consent):
            session.add(row)
        if key not in unconfirmed:
            moved.append(
                consent_webhooks.Change(
                    contact_id=contact_id,
                    type=consent_webhooks.GRANTED if change.granted else consent_webhooks.WITHDRAWN,
                    occurred_at=change.occurred_at,
                    category=change.category,
                    source=change.source,
                    entry_point=change.evidence.get("entry_point"),
                )
            )
    events = _append_events(session, decisions, returning=returning)
    if created:
        insert_rows(
            session,
            Consent,
            _NEW_CURRENT,
            ([getattr(row, name) for name in _NEW_CURRENT] for row in created.values()),
        )
    consent_webhooks.queue(session, moved)
    session.flush()
    return Recorded(events, current)


_NEW_CURRENT = (
    "contact_id",
    "category",
    "granted",
    "source",
    "updated_at",
    "granted_at",
    "confirmed",
)
_EVENT = (
    "contact_id",
    "category",
    "granted",
    "source",
    "occurred_at",
    "recorded_at",
    "text",
    "text_version",
    "evidence",
)


def _current_states(session: Session, contact_ids: set[int]) -> dict[tuple[int, str], Consent]:
    if len(contact_ids) == 1:
        (contact_id,) = contact_ids
        rows = session.exec(select(Consent).where(Consent.contact_id == contact_id))
    else:
        rows = session.exec(select(Consent).where(any_of(session, Consent.contact_id, contact_ids)))
    return {(row.contact_id, row.category): row for row in rows}


def _append_events(
    session: Session, decisions: Sequence[tuple[int, ConsentChange]], *, returning: bool
) -> list[ConsentEvent]:
    recorded_at = utcnow()
    rows = (
        (
            contact_id,
            change.category,
            change.granted,
            str(change.source),
            change.occurred_at,
            recorded_at,
            change.text,
            change.text_version,
            dict(change.evidence),
        )
        for contact_id, change in decisions
    )
    if not returning:  # a batch: nobody reads the rows back
        insert_rows(session, ConsentEvent, _EVENT, rows)
        return []
    statement = insert(ConsentEvent).returning(ConsentEvent, sort_by_parameter_order=True)
    return list(session.scalars(statement, [dict(zip(_EVENT, row, strict=True)) for row in rows]))


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


def recorded_decisions(
    session: Session, *, contact_ids: Collection[int], source: str
) -> set[tuple[int, str, bool, datetime, str]]:
    """(contact_id, category, granted, occurred_at, text_version) of the ledger rows from this
    source: what an import run before has recorded already."""
    if not contact_ids:
        return set()
    rows = session.execute(
        select(
            ConsentEvent.contact_id,
            ConsentEvent.category,
            ConsentEvent.granted,
            ConsentEvent.occurred_at,
            ConsentEvent.text_version,
        ).where(
            any_of(session, ConsentEvent.contact_id, contact_ids), ConsentEvent.source == source
        )
    )
    return {(c, category, granted, at, version) for c, category, granted, at, version in rows}
