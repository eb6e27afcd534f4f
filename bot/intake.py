"""Consent collected elsewhere (C16), recorded one way whoever brings it: the business API posts
one decision, `flask --app wsgi consent import` thousands per batch, through the same steps.

For each decision: refused if the number is suppressed (an erasure; C18); the contact found or
created and locked; the ledger rows appended (storage.consents.record_many); marketing consent
held until confirmed where the double opt-in is on, and the confirmation template queued.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from sqlmodel import Session, col, select

from bot.api.validation import ConsentRequest, is_parent_user_id
from bot.graph.payloads import is_user_id, template_payload
from bot.wiring.logmask import mask_recipient
from bot.wiring.services import Services
from flows.catalog import Catalog
from flows.policy import ConsentChange, ConsentSource, Purpose, decisions
from flows.signals import DOI_NO, DOI_YES
from storage.bulk import any_of
from storage.consents import record_many, recorded_decisions
from storage.contact_batch import lock_contacts, strong_identifiers_of
from storage.contacts import lock_contact, lock_known_contact
from storage.double_optin import mark_pending, settle_as_confirmed
from storage.models import Consent, ConsentEvent
from storage.outbox import enqueue_message
from storage.suppression import suppressed_among

log = logging.getLogger(__name__)

SUPPRESSED = "suppressed"
SUPPRESSED_MESSAGE = (
    "this number was erased and is suppressed: consent collected elsewhere cannot be recorded "
    "for it; only the person's own new opt-in on WhatsApp lifts that"
)
PARENT_USER_ID = "parent_user_id"
PARENT_USER_ID_MESSAGE = (
    "a parent user id names a person only once they wrote: use their number or their "
    "business-scoped user id"
)


@dataclass(frozen=True, slots=True)
class Named:
    """The contact a decision names: its id and how Meta reaches it."""

    id: int
    wa_id: str | None
    user_id: str | None

    @property
    def address(self) -> str:
        """The number when known, else the user id: payloads put that in `recipient` (C27)."""
        address = self.wa_id or self.user_id
        assert address is not None, "a contact always has a number or a user id"
        return address


@dataclass(slots=True, kw_only=True)
class Outcome:
    """What became of one decision."""

    request: ConsentRequest
    contact: Named | None = None
    refused: str | None = None  # SUPPRESSED or PARENT_USER_ID: nothing was recorded
    reason: str | None = None  # why, in words
    duplicate: bool = False  # every row of it was in the ledger already (an import run again)
    events: list[ConsentEvent] = field(default_factory=list)  # when asked for
    pending: list[str] = field(default_factory=list)  # awaiting the double opt-in tap
    confirmation: dict[str, Any] | None = None
    changes: list[ConsentChange] = field(default_factory=list)
    to_confirm: list[str] = field(default_factory=list)


def record_collected(
    session: Session,
    app_services: Services,
    requests: Sequence[ConsentRequest],
    *,
    skip_recorded: bool = False,
    returning: bool = True,
) -> list[Outcome]:
    """Record these decisions in the caller's transaction, in order; an outcome for each.

    skip_recorded: a row identical to one from the same source already in the ledger (contact,
    category, granted, collected_at, text) is not recorded again, so a file imported twice
    records nothing the second time. returning: the new ledger rows go into the outcomes.
    """
    catalog = app_services.catalog
    outcomes = [Outcome(request=request) for request in requests]
    keys = {request.wa_id for request in requests}
    # Suppressed by any identifier of the person the key names (C18, C27), checked before any
    # contact is created.
    known = strong_identifiers_of(session, keys)
    suppressed = suppressed_among(
        session,
        key=app_services.settings.suppression_key,
        people={k: (k, *known.get(k, ())) for k in keys},
    )
    for outcome in outcomes:
        if outcome.request.wa_id in suppressed:
            outcome.refused, outcome.reason = SUPPRESSED, SUPPRESSED_MESSAGE
    numbers = {
        o.request.wa_id for o in outcomes if not o.refused and not is_user_id(o.request.wa_id)
    }
    by_number = lock_contacts(session, numbers)
    for outcome in outcomes:
        key = outcome.request.wa_id
        if outcome.refused:
            continue
        if key in by_number:
            contact_id, user_id = by_number[key]
            outcome.contact = Named(contact_id, key, user_id)
        else:
            _name_by_user_id(session, outcome)
    live = [o for o in outcomes if not o.refused]
    contact_ids = {_id(o) for o in live}
    sendable = _sendable(session, contact_ids) if catalog.double_opt_in.enabled else set()
    seen: set[tuple[int, str, bool, Any, str]] = set()
    if skip_recorded:
        for source in {o.request.source for o in live}:
            seen |= recorded_decisions(session, contact_ids=contact_ids, source=source)

    batch: list[tuple[int, ConsentChange]] = []
    unconfirmed: set[tuple[int, str]] = set()
    for outcome in live:
        contact_id = _id(outcome)
        changes = _changes(outcome.request)
        if skip_recorded:
            row_keys = [_key(contact_id, c) for c in changes]
            changes = [c for c, key in zip(changes, row_keys, strict=True) if key not in seen]
            seen.update(row_keys)
            if not changes:
                outcome.duplicate = True
                continue
        outcome.changes = changes
        outcome.to_confirm = _to_confirm(catalog, outcome.request, contact_id, changes, sendable)
        unconfirmed |= {(contact_id, category) for category in outcome.to_confirm}
        batch.extend((contact_id, change) for change in changes)
    recorded = record_many(session, batch, returning=returning, unconfirmed=unconfirmed)

    events = iter(recorded.events)
    for outcome in live:
        if not outcome.changes:
            continue
        if returning:
            outcome.events = [next(events) for _ in outcome.changes]
        contact_id = _id(outcome)
        if outcome.to_confirm:
            outcome.pending = mark_pending(
                session, contact_id=contact_id, categories=outcome.to_confirm
            )
        request = outcome.request
        # A withdrawal, or a grant that needs no confirmation, leaves nothing awaiting one; a
        # late decision that did not become the current state (an older collected_at) changes
        # nothing.
        settled = [
            c.category
            for c in outcome.changes
            if c.category not in outcome.pending
            and (row := recorded.current.get((contact_id, c.category))) is not None
            and not row.confirmed
            and row.granted == request.granted
            and row.updated_at == request.collected_at
        ]
        if settled:
            settle_as_confirmed(session, contact_id=contact_id, categories=settled)
        if outcome.pending:
            assert outcome.contact is not None
            outcome.confirmation = queue_confirmation(
                session, app_services, contact_id, outcome.contact.address, outcome.pending
            )
    return outcomes


def _id(outcome: Outcome) -> int:
    assert outcome.contact is not None
    return outcome.contact.id


def _name_by_user_id(session: Session, outcome: Outcome) -> None:
    """The person a business-scoped user id names, created if new; never by a parent user id,
    which names someone only once they wrote (C27)."""
    key = outcome.request.wa_id
    contact = lock_known_contact(session, wa_id=key)
    if contact is None and is_parent_user_id(key):
        outcome.refused, outcome.reason = PARENT_USER_ID, PARENT_USER_ID_MESSAGE
        return
    if contact is None:
        contact = lock_contact(session, wa_id=None, user_id=key)
    assert contact.id is not None
    outcome.contact = Named(contact.id, contact.wa_id, contact.user_id)


def _changes(request: ConsentRequest) -> list[ConsentChange]:
    return list(
        decisions(
            request.categories,
            granted=request.granted,
            source=request.source,
            text=request.text,
            occurred_at=request.collected_at,
            evidence=request.evidence,
        )
    )


def _key(contact_id: int, change: ConsentChange) -> tuple[int, str, bool, Any, str]:
    return (contact_id, change.category, change.granted, change.occurred_at, change.text_version)


def _sendable(session: Session, contact_ids: set[int]) -> set[tuple[int, str]]:
    """(contact, category) granted and confirmed now: marketing consent that stays confirmed."""
    if not contact_ids:
        return set()
    rows = session.exec(
        select(Consent.contact_id, Consent.category).where(
            any_of(session, Consent.contact_id, contact_ids),
            col(Consent.granted).is_(True),
            col(Consent.confirmed).is_(True),
        )
    )
    return {(contact_id, category) for contact_id, category in rows}


def _to_confirm(
    catalog: Catalog,
    request: ConsentRequest,
    contact_id: int,
    changes: list[ConsentChange],
    sendable: set[tuple[int, str]],
) -> list[str]:
    """Marketing categories this grant holds until the person taps doi:yes; confirmed marketing
    consent stays confirmed. Keeps `sendable` current for later decisions of the batch."""
    double_opt_in = (
        catalog.double_opt_in.enabled
        and request.granted
        and request.source is not ConsentSource.WHATSAPP
    )
    held = [
        c.category
        for c in changes
        if double_opt_in
        and c.category in catalog.marketing_ids
        and (contact_id, c.category) not in sendable
    ]
    for change in changes:
        if not request.granted:
            sendable.discard((contact_id, change.category))
        elif request.source is ConsentSource.WHATSAPP:
            sendable.add((contact_id, change.category))
    return held


def confirmation_components() -> list[dict[str, Any]]:
    """The quick-reply buttons of the approved confirmation template: yes first, then no."""
    return [
        {
            "type": "button",
            "sub_type": "quick_reply",
            "index": str(index),
            "parameters": [{"type": "payload", "payload": payload}],
        }
        for index, payload in enumerate((DOI_YES, DOI_NO))
    ]


def queue_confirmation(
    session: Session, app_services: Services, contact_id: int, address: str, pending: list[str]
) -> dict[str, Any]:
    """Queue the double opt-in template for categories now awaiting confirmation; what the API
    answers about it."""
    settings = app_services.settings
    answer: dict[str, Any] = {"categories": pending}
    if settings.phone_number_id is None:
        # The consent stays recorded and pending (not sendable); the business can post it again
        # once a sender is configured, which queues the template then.
        log.warning("double opt-in for %s not queued: no sender", mask_recipient(address))
        return answer | {
            "status": "not_queued",
            "message_id": None,
            "reason": "WHATSAPP_PHONE_NUMBER_ID is not set, so the confirmation template "
            "cannot be sent; the categories stay unconfirmed",
        }
    message_id = enqueue_confirmation(session, app_services, contact_id, address)
    return answer | {"status": "queued", "message_id": message_id, "reason": None}


def enqueue_confirmation(
    session: Session, app_services: Services, contact_id: int, address: str
) -> str:
    """The double opt-in template to this contact (its number, else its user id), in the
    outbox; the message's id."""
    catalog = app_services.catalog
    template = catalog.double_opt_in.template
    language = catalog.double_opt_in.language or catalog.company.default_language
    sender = app_services.settings.phone_number_id
    assert template is not None  # the OPTIN_CONFIG check requires it when in use
    assert sender is not None
    return enqueue_message(
        session,
        contact_id=contact_id,
        phone_number_id=sender,
        payload=template_payload(address, template, language, confirmation_components()),
        type="template",
        text=f"[double opt-in template {template} ({language})]",
        # No category: the confirmation itself is what the pending consent waits for.
        category=None,
        purpose=Purpose.DOUBLE_OPT_IN,
    )
