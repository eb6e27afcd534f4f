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
from bot.api.validation import consent_request, invalid, json_object
from bot.intake import PARENT_USER_ID, SUPPRESSED, Outcome, record_collected
from bot.wiring.logmask import mask_recipient
from bot.wiring.services import services
from flows.catalog import Catalog
from storage.consents import current_consents
from storage.contacts import find_contact
from storage.db import session_scope

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
        (outcome,) = record_collected(session, app_services, [decision])
        if outcome.refused == SUPPRESSED:
            # Recording anything would bring an erased person's number back; only their own new
            # opt-in inside the WhatsApp conversation lifts the suppression (C18).
            raise ApiError(409, "suppressed", outcome.reason or "")
        if outcome.refused == PARENT_USER_ID:
            raise invalid("wa_id", outcome.reason or "", "invalid_number")
        answer = _answer(session, app_services.catalog, outcome)
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


def _answer(session: Session, catalog: Catalog, outcome: Outcome) -> dict[str, Any]:
    assert outcome.contact is not None
    consents = current_consents(session, contact_id=outcome.contact.id)
    return {
        "wa_id": outcome.contact.wa_id,
        "user_id": outcome.contact.user_id,
        "events": [consent_event_shape(e) for e in outcome.events],
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
        "confirmation": outcome.confirmation,
    }
