"""Double opt-in: marketing consent captured off WhatsApp waits for a tap on WhatsApp.

While pending, the current-state row says granted=True, confirmed=False: the ledger keeps what
the business reported, and storage.consents.may_send refuses the category until the contact
taps the confirmation template's "yes" quick reply (flows.signals.DOI_YES); "no" (DOI_NO)
withdraws. The dialogue decides the ledger rows of a tap; the webhook appends them and then
calls settle_answers, with the contact locked.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from sqlmodel import Session, col, select

from storage.models import Consent


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


def settle_answers(session: Session, *, contact_id: int, answers: Mapping[str, bool]) -> None:
    """The contact answered the confirmation template (category → granted), and the ledger rows
    are appended: each category is settled, unless the answer lost to a newer decision (a decline
    that did so stays pending, so never sendable)."""
    settled = [
        category
        for category, granted in answers.items()
        if (row := session.get(Consent, (contact_id, category))) is not None
        and row.granted == granted
    ]
    if settled:
        settle_as_confirmed(session, contact_id=contact_id, categories=settled)
