"""Bearer tokens from API_TOKENS, compared in constant time, each limited to its scopes; calls
logged by token fingerprint."""

from __future__ import annotations

import hmac
import logging

from flask import g, request

from bot.api import bp
from bot.api.errors import ApiError
from bot.wiring.accounts import ApiToken
from bot.wiring.logmask import fingerprint
from bot.wiring.services import services

__all__ = ["fingerprint", "required_scope"]

log = logging.getLogger("bot.api")

OPEN_ENDPOINTS = frozenset({"api.openapi"})
READ_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
# Every route that changes something names its scope here; reading needs "read". A changing
# route missing from this table is refused to every token, never open to all of them.
SCOPE_OF_ENDPOINT = {
    "api.send_message": "send",
    "api.record_consents": "consent",
    "api.erase": "erase",
}


def required_scope(endpoint: str | None, method: str) -> str | None:
    """The scope a call needs; None for a route that needs one the table does not name."""
    if endpoint in SCOPE_OF_ENDPOINT:
        return SCOPE_OF_ENDPOINT[endpoint]
    return "read" if method in READ_METHODS else None


def _matching(token: str, accepted: tuple[ApiToken, ...]) -> ApiToken | None:
    # Compare against every token so timing does not reveal which one was close.
    matched = None
    for candidate in accepted:
        if hmac.compare_digest(candidate.token.encode(), token.encode()):
            matched = candidate
    return matched


@bp.before_request
def require_token() -> None:
    if request.endpoint in OPEN_ENDPOINTS:
        return
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    accepted = services().settings.api_tokens
    if scheme.lower() != "bearer" or not token or not accepted:
        raise ApiError(401, "unauthorized", "send Authorization: Bearer <one of API_TOKENS>")
    matched = _matching(token, accepted)
    if matched is None:
        raise ApiError(401, "unauthorized", "unknown API token")
    g.api_token = matched
    g.token_fingerprint = matched.fingerprint
    if request.endpoint is None:
        return  # no such route: the 404 or 405 says so
    scope = required_scope(request.endpoint, request.method)
    if scope is None or scope not in matched.scopes:
        raise ApiError(
            403,
            "insufficient_scope",
            f"this token lacks the {scope!r} scope this call needs"
            if scope
            else "no token may make this call",
            # RFC 6750's way of naming the missing scope.
            {"WWW-Authenticate": f'Bearer error="insufficient_scope", scope="{scope or ""}"'},
        )


@bp.after_request
def log_call(response):  # type: ignore[no-untyped-def]
    token = g.get("api_token")
    log.info(
        "api %s %s -> %s by token %s",
        request.method,
        request.url_rule.rule if request.url_rule else request.path,
        response.status_code,
        token.label if token else "-",
    )
    return response
