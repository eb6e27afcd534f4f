"""The consent check at send time: the facts of every recipient in a claimed batch, read at once,
and the policy's decision for each row (flows.policy.send_refusal)."""

from __future__ import annotations

from collections.abc import Collection, Iterable
from datetime import datetime

from sqlmodel import Session, col, select

from flows.policy import Outgoing, Recipient, Refusal, send_refusal
from storage.bulk import any_of
from storage.models import Consent, Contact, Suppression
from storage.outbox import Claimed
from storage.suppression import suppression_digester
from storage.types import utcnow


def refused_now(
    session: Session,
    rows: Iterable[Claimed],
    *,
    suppression_key: bytes,
    marketing: Collection[str] = (),
    now: datetime | None = None,
) -> dict[int, str]:
    """The rows that may not be sent any more, by outbox id, with the reason.

    The consent policy's send decision again at send time, for a whole batch in three queries:
    the facts of every recipient in the batch are read at once, then each row is decided.
    """
    messages = [row for row in rows if row.kind == "message" and row.contact_id is not None]
    if not messages:
        return {}
    now = now or utcnow()
    recipients = _recipients(
        session, {row.contact_id for row in messages}, suppression_key=suppression_key
    )
    refused: dict[int, str] = {}
    for row in messages:
        recipient = recipients.get(row.contact_id) or Recipient(known=False)
        refusal = send_refusal(
            Outgoing(category=row.category, purpose=row.purpose),
            recipient,
            marketing=marketing,
            now=now,
        )
        if refusal is not None:
            refused[row.outbox_id] = _cancellation(refusal, row, recipient)
    return refused


def _recipients(
    session: Session, contact_ids: set[int | None], *, suppression_key: bytes
) -> dict[int, Recipient]:
    ids = [i for i in contact_ids if i is not None]
    found = session.execute(
        select(
            Contact.id,
            Contact.wa_id,
            Contact.user_id,
            Contact.parent_user_id,
            Contact.marketing_held_until,
        ).where(any_of(session, Contact.id, ids))
    ).all()
    # A person is suppressed when any number or user id they have is (C18, C27).
    digest = suppression_digester(suppression_key)
    digests = {
        contact_id: {digest(i) for i in identifiers if i} for contact_id, *identifiers, _ in found
    }
    every = set().union(*digests.values())
    suppressed: set[str] = set()
    if every:
        suppressed = set(
            session.execute(
                select(Suppression.digest).where(any_of(session, Suppression.digest, every))
            ).scalars()
        )
    sendable: dict[int, set[str]] = {}
    awaiting: dict[int, set[str]] = {}
    for contact_id, category, confirmed in session.execute(
        select(Consent.contact_id, Consent.category, Consent.confirmed).where(
            any_of(session, Consent.contact_id, ids), col(Consent.granted).is_(True)
        )
    ):
        (sendable if confirmed else awaiting).setdefault(contact_id, set()).add(category)
    return {
        contact_id: Recipient(
            known=True,
            suppressed=not digests[contact_id].isdisjoint(suppressed),
            sendable=frozenset(sendable.get(contact_id, ())),
            awaiting_confirmation=frozenset(awaiting.get(contact_id, ())),
            marketing_held_until=held_until,
        )
        for contact_id, *_, held_until in found
    }


def _cancellation(refusal: Refusal, row: Claimed, recipient: Recipient) -> str:
    if refusal is Refusal.UNKNOWN_CONTACT:
        return "cancelled: the contact was erased before sending"
    if refusal is Refusal.SUPPRESSED:
        return "cancelled: the number is suppressed"
    if refusal is Refusal.MARKETING_LIMITED:
        assert recipient.marketing_held_until is not None
        until = recipient.marketing_held_until.isoformat(timespec="seconds")
        return f"cancelled: Meta's per-user marketing limit (131049) holds until {until}"
    return f"cancelled: {row.category!r} was no longer granted when it was to be sent"
