"""What Meta calls: GET /webhook to verify the subscription, POST /webhook with events."""

from __future__ import annotations

import hmac
import logging

from flask import Blueprint, Flask, Response, request
from flask.typing import ResponseReturnValue

from bot.api.errors import error_response
from bot.inbound.ingest import ingest_body
from bot.inbound.responder import Responder
from bot.inbound.signature import SignatureCheck, check_signature
from bot.wiring.services import services
from storage.db import storage_unavailable

log = logging.getLogger(__name__)
bp = Blueprint("webhook", __name__)


@bp.get("/webhook")
def verify() -> Response:
    mode = request.args.get("hub.mode")
    token = request.args.get("hub.verify_token", "")
    challenge = request.args.get("hub.challenge")
    expected = services().settings.verify_token
    if (
        mode == "subscribe"
        and challenge is not None
        and hmac.compare_digest(token.encode(), expected.encode())
    ):
        return Response(challenge, 200, mimetype="text/plain")
    return Response("verification refused", 403, mimetype="text/plain")


@bp.post("/webhook")
def receive() -> ResponseReturnValue:
    body = request.get_data(cache=False)  # raises 413 past MAX_CONTENT_LENGTH
    app_services = services()
    check = check_signature(
        body, request.headers.get("X-Hub-Signature-256"), app_services.settings.app_secret
    )
    if check is SignatureCheck.MISSING:
        return error_response(401, "signature_missing", "X-Hub-Signature-256 header is required")
    if check is SignatureCheck.INVALID:
        log.warning("webhook refused: signature does not match the body")
        return error_response(
            403, "signature_invalid", "X-Hub-Signature-256 does not match the body"
        )
    try:
        report = ingest_body(app_services, body, handler=Responder(app_services))
    except Exception as exc:
        # Bad data never gets here (each item is kept apart); a 503 says storage is down.
        if not storage_unavailable(exc):
            raise
        log.error("storage unavailable, asking Meta to redeliver: %s", exc.__class__.__name__)
        response, status = error_response(
            503, "storage_unavailable", "storage unavailable; redeliver later"
        )
        response.headers["Retry-After"] = "30"
        return response, status
    if report.messages or report.preferences:
        app_services.outbox_wake.set()  # replies are committed: send them now
    # What jsonify would answer, without its provider's machinery on every post.
    return Response(report.as_json(), 200, mimetype="application/json")


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
