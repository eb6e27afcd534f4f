"""Meta's notices that a person changed number or user id: the contact follows them (C27).

A ``user_changed_number`` notice names the old number as sender and the new one in
``system.wa_id`` (with the new and previous user ids since 2026-08); a ``user_changed_user_id``
notice names the new user id as sender and the previous one in ``system.previous_user_id``. The
person is found by what they were known as, takes what they are known as now, and the change is
kept as evidence; no consent is granted or withdrawn, and no answer goes out: it is WhatsApp
speaking, not the person.

An erased person leaves nothing in clear behind (C18): their notice is not stored, and the
suppression of their old identifiers is carried to the new ones, so they stay erased.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bot.meta.events import InboundMessage
from bot.wiring.logmask import mask_recipient
from storage.conversation import insert_inbound
from storage.identity import (
    Identity,
    Reason,
    Report,
    adopt,
    join,
    lock_holders,
    note_previous,
    strong_identifiers,
)
from storage.inbox import keep_other_event
from storage.models import Contact
from storage.suppression import carry_suppression

log = logging.getLogger(__name__)

_REASONS = {reason.value: reason for reason in (Reason.NUMBER_CHANGED, Reason.USER_ID_CHANGED)}


@dataclass(frozen=True, slots=True)
class IdentityNotice:
    before: Identity  # who the person was known as
    after: Identity  # who they are known as now, as far as the notice says
    reason: Reason


def identity_notice(event: InboundMessage) -> IdentityNotice | None:
    """The change a system message announces; None for any other message."""
    notice = event.system
    reason = _REASONS.get(notice.kind or "") if notice is not None else None
    if notice is None or reason is None:
        return None
    if reason is Reason.NUMBER_CHANGED:
        return IdentityNotice(
            before=Identity(wa_id=event.wa_id, user_id=notice.previous_user_id or event.user_id),
            # A new number comes with a new user id; where the notice lacks it, the next
            # message from the person reports it.
            after=Identity(wa_id=notice.new_wa_id, user_id=notice.user_id),
            reason=reason,
        )
    return IdentityNotice(
        before=Identity(
            wa_id=event.wa_id,
            user_id=notice.previous_user_id,
            parent_user_id=notice.previous_parent_user_id,
        ),
        after=Identity(
            wa_id=event.wa_id,
            user_id=notice.user_id or event.user_id,
            parent_user_id=notice.parent_user_id,
        ),
        reason=reason,
    )


def apply_identity_notice(
    session: Session, event: InboundMessage, notice: IdentityNotice, *, suppression_key: bytes
) -> bool:
    """Store the notice on the person's contact and move them to their new identifiers; whether
    it was new. A redelivered notice changes nothing twice."""
    report = Report(
        at=event.timestamp,
        reason=notice.reason,
        wamid=event.wamid,
        note=event.system.body if event.system is not None else None,
    )
    contact, by_before = _lock_person(session, notice, report)
    if contact is None:
        return _unknown_person(session, event, notice, suppression_key=suppression_key)
    stored = insert_inbound(
        session,
        contact_id=contact.id,
        wamid=event.wamid,
        phone_number_id=event.phone_number_id,
        type=event.original_type,
        text=event.summary,
        meta_timestamp=event.timestamp,
        context_wamid=None,
        raw=dict(event.raw),
    )
    if stored is None:
        return False
    had = adopt(session, contact, notice.after, report)
    if not by_before:
        # Found by the new identifiers: the old ones still go into the history as evidence.
        note_previous(session, contact, notice.before, report)
        had.extend(notice.before.keys())
    carry_suppression(session, key=suppression_key, before=had, after=strong_identifiers(contact))
    log.info(
        "%s: contact %s now %s",
        notice.reason.value,
        mask_recipient(notice.before.wa_id or notice.before.user_id),
        mask_recipient(contact.wa_id or contact.user_id),
    )
    return True


def _lock_person(
    session: Session, notice: IdentityNotice, report: Report
) -> tuple[Contact | None, bool]:
    """The contact known by the old identifiers, else by the new ones (the person may have
    written from the new number before the notice came), and whether by the old ones. Contacts
    the old identifiers name are one person: they are joined."""
    holders = lock_holders(session, notice.before)
    by_before = bool(holders)
    holders = holders or lock_holders(session, notice.after)
    if not holders:
        return None, False
    contact, *others = holders
    for other in others:
        join(session, keep=contact, other=other, report=report)
    return contact, by_before


def _unknown_person(
    session: Session, event: InboundMessage, notice: IdentityNotice, *, suppression_key: bytes
) -> bool:
    before = (*notice.before.keys(), notice.before.parent_user_id)
    after = (*notice.after.keys(), notice.after.parent_user_id)
    if carry_suppression(session, key=suppression_key, before=before, after=after):
        # An erased person: only the keyed hashes of the new identifiers are kept.
        log.info("%s of an erased person: kept suppressed", notice.reason.value)
        return False
    # Nobody the bot knows: kept for support as it came, never a contact of its own.
    return keep_other_event(session, field="messages", entry_id=None, raw=_as_change(event))


def _as_change(event: InboundMessage) -> dict[str, Any]:
    metadata = {"phone_number_id": event.phone_number_id}
    if event.display_phone_number:
        metadata["display_phone_number"] = event.display_phone_number
    return {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": metadata,
            "messages": [dict(event.raw)],
        },
    }
