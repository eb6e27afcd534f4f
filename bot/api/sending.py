"""POST /messages (C14, C15): a business send, checked before it is queued; GET its status."""

from __future__ import annotations

import logging
import math
from typing import Any

from flask import Response, jsonify
from sqlmodel import Session

from bot.api import bp
from bot.api.errors import ApiError
from bot.api.idempotency import idempotent, remember
from bot.api.shapes import iso
from bot.api.validation import json_object, send_request
from bot.graph.payloads import readdressed
from bot.wiring.logmask import mask_recipient
from bot.wiring.services import services
from flows.policy import Outgoing, Purpose, Refusal, send_refusal
from storage.consents import recipient_facts
from storage.contacts import contact_address, find_contact, lock_known_contact
from storage.db import session_scope
from storage.identity import strong_identifiers
from storage.models import Contact, Message
from storage.outbox import PRIORITY_BUSINESS, enqueue_message
from storage.suppression import suppressed_any
from storage.types import utcnow

log = logging.getLogger(__name__)

# What GET /messages/{id} reports: the contract's five statuses. A voice message "played" has
# been read; a row cancelled before sending (STOP, erasure) failed, with the reason as error.
REPORTED_STATUS = {"played": "read", "cancelled": "failed"}


@bp.post("/messages")
@idempotent
def send_message() -> tuple[Response, int]:
    app_services = services()
    settings = app_services.settings
    body = json_object()
    with session_scope(app_services.engine) as session:
        send = send_request(
            body, app_services.catalog, known=lambda w: find_contact(session, key=w) is not None
        )
        if settings.phone_number_id is None:
            raise ApiError(
                503,
                "sender_not_configured",
                "WHATSAPP_PHONE_NUMBER_ID is not set: business-initiated messages have no "
                "sender; set it to the phone number id from Meta's WhatsApp Manager",
            )
        # Row-locked on PostgreSQL, so a STOP cannot slip between the check and the queueing.
        contact = lock_known_contact(session, wa_id=send.to)
        # Named by a number or a user id, the person is suppressed if any of theirs is.
        identifiers = (send.to, *(strong_identifiers(contact) if contact else ()))
        refusal = send_refusal(
            Outgoing(
                category=send.category, purpose=Purpose.BUSINESS, free_text=send.type == "text"
            ),
            recipient_facts(
                session,
                contact,
                suppressed=suppressed_any(
                    session, key=settings.suppression_key, identifiers=identifiers
                ),
            ),
            marketing=app_services.catalog.marketing_ids,
            now=utcnow(),
        )
        if refusal is not None:
            raise _refused(refusal, send.category, contact)
        assert contact is not None  # an unknown contact was refused
        message_id = enqueue_message(
            session,
            contact_id=contact.id,
            phone_number_id=settings.phone_number_id,
            # The number when the person has one (`to`), else their user id (`recipient`).
            payload=readdressed(send.payload, contact_address(contact)),
            type=send.type,
            text=send.text,
            category=send.category,
            purpose=Purpose.BUSINESS,
            priority=PRIORITY_BUSINESS,
        )
        answer = {"id": message_id, "status": "queued"}
        remember(session, 202, answer)
    app_services.outbox_wake.set()
    log.info("queued %s %s to %s", send.category, send.type, mask_recipient(send.to))
    return jsonify(answer), 202


@bp.get("/messages/<message_id>")
def get_message(message_id: str) -> Response:
    with Session(services().engine) as session:
        message = session.get(Message, message_id)
        if message is None or message.direction != "out":
            raise ApiError(404, "not_found", f"no outbound message with id {message_id[:64]}")
        return jsonify(message_status_shape(message))


def message_status_shape(message: Message) -> dict[str, Any]:
    status = REPORTED_STATUS.get(message.status, message.status)
    error = None
    if message.error_code is not None or message.error_title or message.status == "cancelled":
        error = {"code": message.error_code, "title": message.error_title or "cancelled"}
    return {
        "id": message.id,
        "wamid": message.wamid,
        "status": status,
        "error": error,
        "category": message.category,
        "queued_at": iso(message.created_at),
        "status_at": iso(message.status_at),
    }


def _refused(refusal: Refusal, category: str, contact: Contact | None) -> ApiError:
    """The API's answer to each reason the policy gives for not sending."""
    if refusal is Refusal.SUPPRESSED:
        return ApiError(403, "suppressed", "this number is suppressed: nothing is sent to it")
    if refusal is Refusal.AWAITING_CONFIRMATION:
        return ApiError(
            403,
            "no_consent",
            f"consent to {category!r} awaits the contact's double opt-in confirmation on "
            "WhatsApp; nothing of this category is sent until then",
        )
    if refusal in (Refusal.NO_CONSENT, Refusal.UNKNOWN_CONTACT):
        return ApiError(403, "no_consent", f"the contact has not granted consent to {category!r}")
    if refusal is Refusal.MARKETING_LIMITED:
        assert contact is not None and contact.marketing_held_until is not None
        until = contact.marketing_held_until
        return ApiError(
            429,
            "marketing_limited",
            "Meta refused a marketing message to this contact with error 131049 (per-user "
            "marketing limit); marketing categories are held until "
            f"{iso(until)}. Other categories can be sent.",
            headers={"Retry-After": str(max(1, math.ceil((until - utcnow()).total_seconds())))},
        )
    return ApiError(
        422,
        "outside_service_window",
        "free-form text is allowed only within 24 hours of the contact's last message; "
        "send an approved template instead",
    )
