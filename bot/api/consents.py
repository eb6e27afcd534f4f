"""POST /consents (C16): consent collected outside the bot, recorded with its wording and proof."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, jsonify
from sqlmodel import Session

from bot.api import bp
from bot.api.errors import ApiError
from bot.api.idempotency import idempotent, remember
from bot.api.shapes import consent_event_shape, iso
from bot.api.validation import (
    ConsentRequest,
    consent_request,
    invalid,
    is_parent_user_id,
    json_object,
)
from bot.graph.payloads import is_user_id, template_payload
from bot.wiring.logmask import mask_recipient
from bot.wiring.services import Services, services
from flows.catalog import Catalog
from flows.policy import ConsentSource, Purpose, decisions
from flows.signals import DOI_NO, DOI_YES
from storage.consents import current_consents, may_send, record
from storage.contacts import contact_address, find_contact, lock_contact, lock_known_contact
from storage.db import session_scope
from storage.double_optin import mark_pending, settle_as_confirmed
from storage.identity import strong_identifiers
from storage.models import Contact
from storage.outbox import enqueue_message
from storage.suppression import suppressed_any

log = logging.getLogger(__name__)


@bp.post("/consents")
@idempotent
def record_consents() -> tuple[Response, int]:
    app_services = services()
    body = json_object()
    with session_scope(app_services.engine) as session:
        decision = consent_request(
            body, app_services.catalog, known=lambda w: find_contact(session, key=w) is not None
        )
        known = find_contact(session, key=decision.wa_id)
        identifiers = (decision.wa_id, *(strong_identifiers(known) if known else ()))
        if suppressed_any(
            session, key=app_services.settings.suppression_key, identifiers=identifiers
        ):
            # Recording anything would bring an erased person's number back; only their own new
            # opt-in inside the WhatsApp conversation lifts the suppression (C18).
            raise ApiError(
                409,
                "suppressed",
                "this number was erased and is suppressed: consent collected elsewhere cannot "
                "be recorded for it; only the person's own new opt-in on WhatsApp lifts that",
            )
        answer = _record(session, app_services, decision)
        remember(session, 201, answer)
    if answer["confirmation"] and answer["confirmation"]["status"] == "queued":
        app_services.outbox_wake.set()
    log.info(
        "recorded %s of %s for %s from %s",
        "grant" if decision.granted else "withdrawal",
        ",".join(decision.categories),
        mask_recipient(decision.wa_id),
        decision.source,
    )
    return jsonify(answer), 201


def _record(session: Session, app_services: Services, decision: ConsentRequest) -> dict[str, Any]:
    catalog = app_services.catalog
    contact = _lock_named(session, decision.wa_id)
    assert contact.id is not None
    double_opt_in = (
        catalog.double_opt_in.enabled
        and decision.granted
        and decision.source is not ConsentSource.WHATSAPP
    )
    # Marketing consent already confirmed stays confirmed; the rest must be confirmed again.
    to_confirm = [
        c
        for c in decision.categories
        if double_opt_in
        and c in catalog.marketing_ids
        and not may_send(session, contact_id=contact.id, category=c)
    ]
    events = record(
        session,
        contact_id=contact.id,
        changes=decisions(
            decision.categories,
            granted=decision.granted,
            source=decision.source,
            text=decision.text,
            occurred_at=decision.collected_at,
            evidence=decision.evidence,
        ),
    )
    pending = mark_pending(session, contact_id=contact.id, categories=to_confirm)
    consents = current_consents(session, contact_id=contact.id)
    # A withdrawal, or a grant that needs no confirmation, leaves nothing awaiting one; a late
    # decision that did not become the current state (an older collected_at) changes nothing.
    settled = [
        c
        for c in decision.categories
        if c not in pending
        and (row := consents.get(c)) is not None
        and row.granted == decision.granted
        and row.updated_at == decision.collected_at
    ]
    settle_as_confirmed(session, contact_id=contact.id, categories=settled)
    confirmation = _queue_confirmation(session, app_services, contact, pending)
    return {
        "wa_id": contact.wa_id,
        "user_id": contact.user_id,
        "events": [consent_event_shape(e) for e in events],
        "consents": {
            category_id: {
                "granted": bool(row and row.granted),
                "confirmed": bool(row and row.granted and row.confirmed),
                "source": row.source if row else None,
                "updated_at": iso(row.updated_at) if row else None,
            }
            for category_id in catalog.category_ids
            for row in [consents.get(category_id)]
        },
        "confirmation": confirmation,
    }


def _lock_named(session: Session, key: str) -> Contact:
    """The person a number or a user id names, created if new (never by a parent user id)."""
    if is_user_id(key):
        known = lock_known_contact(session, wa_id=key)
        if known is not None:
            return known
        if is_parent_user_id(key):
            raise invalid(
                "wa_id",
                "a parent user id names a person only once they wrote: use their number or "
                "their business-scoped user id",
                "invalid_number",
            )
        return lock_contact(session, wa_id=None, user_id=key)
    return lock_contact(session, wa_id=key, user_id=None)


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


def _queue_confirmation(
    session: Session, app_services: Services, contact: Contact, pending: list[str]
) -> dict[str, Any] | None:
    """Queue the double opt-in template for categories now awaiting confirmation."""
    if not pending:
        return None
    catalog: Catalog = app_services.catalog
    settings = app_services.settings
    answer: dict[str, Any] = {"categories": pending}
    if settings.phone_number_id is None:
        # The consent stays recorded and pending (not sendable); the business can post it again
        # once a sender is configured, which queues the template then.
        log.warning(
            "double opt-in for %s not queued: no sender", mask_recipient(contact_address(contact))
        )
        return answer | {
            "status": "not_queued",
            "message_id": None,
            "reason": "WHATSAPP_PHONE_NUMBER_ID is not set, so the confirmation template "
            "cannot be sent; the categories stay unconfirmed",
        }
    template = catalog.double_opt_in.template
    language = catalog.double_opt_in.language or catalog.company.default_language
    assert template is not None  # the OPTIN_CONFIG check requires it when enabled
    assert contact.id is not None
    message = enqueue_message(
        session,
        contact_id=contact.id,
        phone_number_id=settings.phone_number_id,
        payload=template_payload(
            contact_address(contact), template, language, confirmation_components()
        ),
        type="template",
        text=f"[double opt-in template {template} ({language})]",
        # No category: the confirmation itself is what the pending consent waits for.
        category=None,
        purpose=Purpose.DOUBLE_OPT_IN,
    )
    return answer | {"status": "queued", "message_id": message.id, "reason": None}
