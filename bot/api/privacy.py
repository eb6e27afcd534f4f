"""The data subject's rights: access and portability (C17), erasure with suppression (C18)."""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, jsonify
from sqlmodel import Session

from bot.api import bp
from bot.api.lookup import contact_named, contact_or_404
from bot.api.shapes import (
    consent_event_shape,
    contact_shape,
    identity_change_shape,
    iso,
    message_shape,
)
from bot.wiring.logmask import mask_recipient
from bot.wiring.services import Services, services
from storage.db import session_scope
from storage.erasure import erase_contact
from storage.export import HeldData, held_on
from storage.suppression import person_is_suppressed
from storage.types import utcnow

log = logging.getLogger(__name__)


@bp.get("/contacts/<wa_id>/export")
def export_contact(wa_id: str) -> Response:
    app_services = services()
    with Session(app_services.engine) as session:
        contact = contact_or_404(
            session, wa_id, suppression_key=app_services.settings.suppression_key
        )
        held = held_on(session, contact=contact)
        suppressed = person_is_suppressed(
            session, key=app_services.settings.suppression_key, contact=contact
        )
        document = export_shape(held, app_services, suppressed=suppressed)
    response = jsonify(document)
    response.headers["Content-Disposition"] = 'attachment; filename="contact-export.json"'
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.delete("/contacts/<wa_id>")
def erase(wa_id: str) -> Response:
    app_services = services()
    with session_scope(app_services.engine) as session:
        contact = contact_named(session, wa_id)
        erasure = None
        if contact is not None:
            assert contact.id is not None
            erasure = erase_contact(
                session,
                contact_id=contact.id,
                key=app_services.settings.suppression_key,
                token_fingerprint=g.token_fingerprint,
            )
        if erasure is None:
            # Already gone (or never known): the same 404 a lookup gives.
            contact_or_404(session, wa_id, suppression_key=app_services.settings.suppression_key)
    log.info(
        "erased contact %s by token %s: %s",
        mask_recipient(wa_id),
        g.token_fingerprint,
        ", ".join(f"{k}={v}" for k, v in erasure.removed.items() if v),
    )
    return Response(status=204)


def export_shape(held: HeldData, app_services: Services, *, suppressed: bool) -> dict[str, Any]:
    """Everything held, as JSON: the ledger and the raw payloads included (Art. 15 and 20)."""
    consents = {row.category: row for row in held.consents}
    dialogue = held.dialogue
    return {
        "exported_at": iso(utcnow()),
        "contact": contact_shape(
            held.contact, consents, app_services.catalog, suppressed=suppressed
        )
        | {"country_code": held.contact.country_code},
        "consents": [
            {
                "category": row.category,
                "granted": row.granted,
                "confirmed": row.confirmed,
                "source": row.source,
                "granted_at": iso(row.granted_at),
                "updated_at": iso(row.updated_at),
            }
            for row in held.consents
        ],
        "consent_events": [consent_event_shape(e) for e in held.consent_events],
        # Numbers and user ids the person had, as Meta reported them (C27).
        "identity_changes": [identity_change_shape(c) for c in held.identity_changes],
        "messages": [
            message_shape(m)
            | {
                "phone_number_id": m.phone_number_id,
                "category": m.category,
                "purpose": m.purpose,
                "text_version": m.text_version,
                "context_wamid": m.context_wamid,
                "status_at": iso(m.status_at),
                "stored_at": iso(m.created_at),
                "raw": m.raw,
            }
            for m in held.messages
        ],
        "status_events": [
            {
                "wamid": s.wamid,
                "status": s.status,
                "timestamp": iso(s.meta_timestamp),
                "recipient_id": s.recipient_id,
                "error": {"code": s.error_code, "title": s.error_title}
                if s.error_code is not None or s.error_title
                else None,
                "raw": s.raw,
            }
            for s in held.status_events
        ],
        "preference_events": [
            {
                "category": p.category,
                "value": p.value,
                "detail": p.detail,
                "occurred_at": iso(p.occurred_at),
                "raw": p.raw,
            }
            for p in held.preference_events
        ],
        "dialogue": {
            "stage": dialogue.stage,
            "language": dialogue.language,
            "pending": dialogue.pending or [],
            "prompt_version": dialogue.prompt_version,
            "asked_at": iso(dialogue.asked_at),
            "reprompts": dialogue.reprompts,
            "updated_at": iso(dialogue.updated_at),
        }
        if dialogue is not None
        else None,
        "other_events": [
            {"field": o.field, "received_at": iso(o.received_at), "raw": o.raw}
            for o in held.other_events
        ],
        "unparsed_payloads": [
            {
                "problem": f.problem,
                "received_at": iso(f.received_at),
                "body": bytes(f.body).decode("utf-8", errors="replace"),
            }
            for f in held.failed_payloads
        ],
        # Choices made on the hosted page, confirmed by a tap or not (C28).
        "web_optin_requests": [
            {
                "categories": r.categories,
                "language": r.language,
                "text": r.text,
                "text_version": r.text_version,
                "evidence": r.evidence,
                "submitted_at": iso(r.submitted_at),
                "state": r.state,
                "settled_at": iso(r.settled_at),
            }
            for r in held.web_optin_requests
        ],
    }
