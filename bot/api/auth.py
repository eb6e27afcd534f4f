"""Bearer tokens from API_TOKENS, compared in constant time; calls logged by token fingerprint."""

from __future__ import annotations

import hmac
import logging

from flask import g, request

from bot.api import bp
from bot.api.errors import ApiError
from bot.wiring.logmask import fingerprint
from bot.wiring.services import services

log = logging.getLogger("bot.api")


@bp.before_request
def require_token() -> None:
    if request.endpoint == "api.openapi":
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    accepted = services().settings.api_tokens
    if scheme.lower() != "bearer" or not token or not accepted:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <one of API_TOKENS>")
    # Compare against every token so timing does not reveal which one was close.
    matched = None
    for candidate in accepted:
        if hmac.compare_digest(candidate.token.encode(), token.encode()):
            matched = candidate
    if matched is None:
        raise ApiError(401, "unauthorized", "unknown API token")
    g.token_fingerprint = fingerprint(token)


@bp.after_request
def log_call(response):  # type: ignore[no-untyped-def]
    log.info(
        "api %s %s -> %s by token %s",
        request.method,
        request.url_rule.rule if request.url_rule else request.path,
        response.status_code,
        g.get("token_fingerprint", "-"),
    )
    return response
