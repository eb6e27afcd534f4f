"""Every authenticated API call goes to the audit log, by token fingerprint, with the contact it
names masked and hashed: the console's admins see who read, exported or erased whom, whichever
way it was done.

A read whose record cannot be written is withheld (503): no contact data leaves unaccounted for.
A change that already happened is answered as it is, so the caller does not repeat it. A
streamed answer (the audience) is recorded once it has been sent: until then its query holds
the database, and SQLite's single writer would wait for it.
"""

from __future__ import annotations

import logging
from typing import Any

from flask import Response, g, request
from sqlalchemy.exc import SQLAlchemyError

from bot.api import bp
from bot.api.auth import READ_METHODS
from bot.api.errors import error_response
from bot.wiring.accounts import ApiToken
from bot.wiring.audit import API, audit_now
from bot.wiring.services import Services, services

log = logging.getLogger("bot.api")

# What a successful call to these routes did to a contact, in the console's words.
ACTION_OF_ENDPOINT = {
    "api.get_contact": "contact_viewed",
    "api.get_messages": "contact_viewed",
    "api.get_consent_events": "contact_viewed",
    "api.export_contact": "contact_exported",
    "api.erase": "contact_erased",
}
CONTACT_FIELDS = ("wa_id", "to")  # where a POST body names its contact


def _contact_named(succeeded: bool) -> str | None:
    from_path = (request.view_args or {}).get("wa_id")
    if isinstance(from_path, str):
        return from_path
    if not succeeded:
        return None  # a refused body may be anything, however deep: it is not read again
    body = request.get_json(silent=True) if request.is_json else None
    if isinstance(body, dict):
        for name in CONTACT_FIELDS:
            if isinstance(body.get(name), str):
                return body[name]
    return None


@bp.after_request
def write_audit(response: Response) -> Response:
    token = g.get("api_token")
    if token is None:  # refused before a token was known: nobody to account for
        return response
    event = _event(token, response.status_code)
    app_services = services()  # a streamed answer closes outside the app context
    if response.is_streamed:
        response.call_on_close(lambda: _write(app_services, event))
        return response
    a_read = response.status_code < 300 and request.method in READ_METHODS
    if not _write(app_services, event) and a_read:
        withheld, status = error_response(503, "audit_unavailable", "try again shortly")
        withheld.status_code = status
        return withheld
    return response


def _event(token: ApiToken, status: int) -> dict[str, Any]:
    succeeded = status < 300
    detail: dict[str, Any] = {
        "method": request.method,
        "route": request.url_rule.rule if request.url_rule else request.path[:128],
        "status": status,
    }
    if token.name:
        detail["token"] = token.name
    action = ACTION_OF_ENDPOINT.get(request.endpoint or "", "api_call")
    return {
        "channel": API,
        "actor": token.fingerprint,
        "action": action if succeeded else "api_call",
        "contact_key": _contact_named(succeeded),
        "address": request.remote_addr,
        "detail": detail,
    }


def _write(app_services: Services, event: dict[str, Any]) -> bool:
    try:
        audit_now(app_services, **event)
    except SQLAlchemyError as exc:
        log.error("api call not written to the audit log (%s)", type(exc).__name__)
        return False
    return True
