"""Double opt-in: marketing consent captured off WhatsApp waits for a tap on WhatsApp.

While pending, the current-state row says granted=True, confirmed=False: the ledger keeps what
the business reported, and storage.consents.may_send refuses the category until the contact
taps the confirmation template's "yes" quick reply (payload DOI_YES). "no" (DOI_NO) withdraws.

The webhook calls confirm_pending / decline_pending, with the contact locked, when a template
quick-reply button (Meta's message type "button", `button.payload`) carries one of these ids.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlmodel import Session, col, select

from flows.versioning import text_version
from storage.consents import append_decision
from storage.models import Consent

# Payloads of the confirmation template's quick-reply buttons (index 0 and 1).
DOI_YES = "doi:yes"
DOI_NO = "doi:no"

CONFIRM_TEXT = (
    "Confirmed on WhatsApp: the contact tapped the double opt-in template's quick reply "
    f"{DOI_YES!r}."
)
DECLINE_TEXT = (
    f"Declined on WhatsApp: the contact tapped the double opt-in template's quick reply {DOI_NO!r}."
)


def mark_pending(session: Session, *, contact_id: int, categories: Iterable[str]) -> list[str]:
    """Hold these granted categories until confirmed; the ones that are pending now."""
    pending = []
    for category in categories:
        row = session.get(Consent, (contact_id, category))
        if row is None or not row.granted:
            continue
        row.confirmed = False
        session.add(row)
        pending.append(category)
    session.flush()
    return pending


def settle_as_confirmed(session: Session, *, contact_id: int, categories: Iterable[str]) -> None:
    """Nothing is pending for these categories any more (withdrawn, or granted on WhatsApp)."""
    for category in categories:
        row = session.get(Consent, (contact_id, category))
        if row is not None and not row.confirmed:
            row.confirmed = True
            session.add(row)
    session.flush()


def pending_categories(session: Session, *, contact_id: int) -> list[str]:
    return list(
        session.exec(
            select(Consent.category)
            .where(
                Consent.contact_id == contact_id,
                col(Consent.granted).is_(True),
                col(Consent.confirmed).is_(False),
            )
            .order_by(col(Consent.category))
        )
    )


def confirm_pending(
    session: Session,
    *,
    contact_id: int,
    occurred_at: datetime,
    evidence: dict[str, Any],
    text: str = CONFIRM_TEXT,
) -> list[str]:
    """The contact tapped "yes": every pending category becomes sendable, one ledger row each."""
    return _settle(
        session,
        contact_id=contact_id,
        granted=True,
        occurred_at=occurred_at,
        evidence=evidence,
        text=text,
    )


def decline_pending(
    session: Session,
    *,
    contact_id: int,
    occurred_at: datetime,
    evidence: dict[str, Any],
    text: str = DECLINE_TEXT,
) -> list[str]:
    """The contact tapped "no": every pending category is withdrawn, one ledger row each."""
    return _settle(
        session,
        contact_id=contact_id,
        granted=False,
        occurred_at=occurred_at,
        evidence=evidence,
        text=text,
    )


def _settle(
    session: Session,
    *,
    contact_id: int,
    granted: bool,
    occurred_at: datetime,
    evidence: dict[str, Any],
    text: str,
) -> list[str]:
    categories = pending_categories(session, contact_id=contact_id)
    version = text_version(text)
    for category in categories:
        append_decision(
            session,
            contact_id=contact_id,
            category=category,
            granted=granted,
            source="whatsapp",
            occurred_at=occurred_at,
            text=text,
            text_version=version,
            evidence=evidence,
        )
    # A decline that lost to a newer decision in append_decision stays pending, so never sendable.
    settled = [
        c
        for c in categories
        if (row := session.get(Consent, (contact_id, c))) is not None and row.granted == granted
    ]
    settle_as_confirmed(session, contact_id=contact_id, categories=settled)
    return categories
