"""Reading contacts: their consents, their conversation, their consent ledger."""

from __future__ import annotations

from flask import Response, jsonify
from sqlmodel import Session

from bot.api import bp
from bot.api.lookup import contact_or_404
from bot.api.shapes import (
    consent_event_shape,
    contact_shape,
    identity_change_shape,
    message_shape,
)
from bot.wiring.services import services
from storage.consents import current_consents, ledger_of
from storage.conversation import messages_of
from storage.identity import history_of, strong_identifiers
from storage.models import Contact
from storage.suppression import suppressed_any


def _contact_or_404(session: Session, wa_id: str) -> Contact:
    return contact_or_404(session, wa_id, suppression_key=services().settings.suppression_key)


@bp.get("/contacts/<wa_id>")
def get_contact(wa_id: str) -> Response:
    app_services = services()
    with Session(app_services.engine) as session:
        contact = _contact_or_404(session, wa_id)
        suppressed = suppressed_any(
            session,
            key=app_services.settings.suppression_key,
            identifiers=strong_identifiers(contact),
        )
        shape = contact_shape(
            contact,
            current_consents(session, contact_id=contact.id),
            app_services.catalog,
            suppressed=suppressed,
        )
    return jsonify(shape)


@bp.get("/contacts/<wa_id>/messages")
def get_messages(wa_id: str) -> Response:
    with Session(services().engine) as session:
        contact = _contact_or_404(session, wa_id)
        messages = [message_shape(m) for m in messages_of(session, contact_id=contact.id)]
    return jsonify({"messages": messages})


@bp.get("/contacts/<wa_id>/consent-events")
def get_consent_events(wa_id: str) -> Response:
    with Session(services().engine) as session:
        contact = _contact_or_404(session, wa_id)
        events = [consent_event_shape(e) for e in ledger_of(session, contact_id=contact.id)]
        # Beside the ledger, never in it: a new number or user id grants and withdraws nothing,
        # yet it is the evidence that these consents are the same person's (C27).
        changes = [identity_change_shape(c) for c in history_of(session, contact_id=contact.id)]
    return jsonify({"events": events, "identity_changes": changes})
