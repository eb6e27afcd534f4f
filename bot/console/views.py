"""Console pages: the contact list, one contact's consent history and conversation, its export,
and the support inbox of webhook bodies that could not be read.

Views read through the storage query functions and render; the one change staff make here is
marking an inbox item resolved. Every view is logged with the number masked (the pages themselves
show it in full to signed-in staff), and contact views, exports and resolutions are written to
the audit log.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime
from typing import Any

from flask import Response, jsonify, redirect, render_template, request, url_for
from sqlmodel import Session

from bot.api.privacy import export_shape
from bot.console import bp, log
from bot.console.auth import csrf_ok
from bot.console.staff import admin_required, current_user, is_admin, record
from bot.wiring.logmask import mask_recipient
from bot.wiring.services import services
from storage.consents import current_consents, ledger_of
from storage.contacts import find_contact, marketing_held
from storage.conversation import messages_of
from storage.db import session_scope
from storage.directory import list_contacts
from storage.export import held_on
from storage.inbox import count_failed_payloads, failed_payloads, resolve_failed_payload
from storage.models import ConsentEvent
from storage.suppression import is_suppressed
from storage.types import utcnow


@bp.app_template_filter("utc")
def utc(value: datetime | None) -> str:
    """ISO 8601 in UTC, to the second: what staff compare against Meta's and the API's times."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@bp.app_template_filter("body_text")
def body_text(body: bytes) -> str:
    """A kept body as text, indented when it is JSON; bytes that are not UTF-8 shown escaped."""
    text = body.decode("utf-8", errors="backslashreplace")
    try:
        return json.dumps(json.loads(text), indent=2, ensure_ascii=False)
    except (ValueError, RecursionError):  # not JSON, or nested too deep to indent
        return text


@bp.app_template_filter("zip_decisions")
def zip_decisions(ledger: Iterable[ConsentEvent]) -> Iterator[tuple[ConsentEvent, str]]:
    """Each ledger row with its decision in words: a "no" is a withdrawal only once the
    category had been granted; before that it is a decline."""
    granted_before: set[str] = set()
    for event in ledger:
        if event.granted:
            granted_before.add(event.category)
            yield event, "granted"
        else:
            yield event, "withdrawn" if event.category in granted_before else "declined"


@bp.context_processor
def page_context() -> dict[str, Any]:
    return {
        "company_name": services().catalog.company.name,
        "signed_in": current_user(),
        "admin": is_admin(),
    }


def _user() -> str:
    return current_user() or "?"


def page_number() -> int:
    raw = request.args.get("page", "1")
    return int(raw) if raw.isdigit() and 0 < len(raw) < 7 else 1


def not_found(key: str) -> tuple[str, int]:
    log.info("console %s looked for unknown contact %s", _user(), mask_recipient(key))
    return render_template("console/not_found.html", key=key), 404


@bp.get("/")
def index() -> str:
    search = request.args.get("q", "")
    app_services = services()
    with Session(app_services.engine) as db:
        listing = list_contacts(db, search=search, page=page_number())
    log.info("console %s viewed the contact list (page %d)", _user(), listing.page)
    return render_template(
        "console/contacts.html",
        listing=listing,
        search=search,
        categories=app_services.catalog.categories,
        language=app_services.catalog.company.default_language,
    )


@bp.get("/contacts/<key>")
def contact(key: str) -> str | tuple[str, int]:
    app_services = services()
    with Session(app_services.engine) as db:
        found = find_contact(db, key=key)
        if found is None or found.id is None:
            return not_found(key)
        consents = current_consents(db, contact_id=found.id)
        ledger = ledger_of(db, contact_id=found.id)
        messages = messages_of(db, contact_id=found.id)
        suppressed = is_suppressed(db, key=app_services.settings.suppression_key, wa_id=found.wa_id)
    record("contact_viewed", contact_key=found.wa_id or found.user_id)
    log.info("console %s viewed %s", _user(), mask_recipient(found.wa_id or found.user_id))
    return render_template(
        "console/contact.html",
        contact=found,
        key=found.wa_id or found.user_id,
        consents=consents,
        ledger=ledger,
        messages=messages,
        suppressed=suppressed,
        marketing_held=marketing_held(found, utcnow()),
        categories=app_services.catalog.categories,
        language=app_services.catalog.company.default_language,
    )


@bp.get("/inbox")
def inbox() -> str:
    show_resolved = request.args.get("resolved") == "1"
    with Session(services().engine) as db:
        payloads = failed_payloads(db, resolved=show_resolved)
        unresolved = count_failed_payloads(db)
        resolved_count = count_failed_payloads(db, resolved=True)
    log.info("console %s viewed the support inbox", _user())
    return render_template(
        "console/inbox.html",
        payloads=payloads,
        show_resolved=show_resolved,
        unresolved=unresolved,
        resolved_count=resolved_count,
    )


@bp.post("/inbox/<int:payload_id>/resolve")
def resolve(payload_id: int) -> Response | tuple[str, int]:
    if not csrf_ok():
        return render_template("console/error.html", message="The form had expired."), 400
    with session_scope(services().engine) as db:
        changed = resolve_failed_payload(db, payload_id)
        if changed:
            record("inbox_resolved", detail={"item": payload_id}, db=db)
    if changed:
        log.info("console %s resolved support inbox item %d", _user(), payload_id)
    return redirect(url_for("console.inbox"))


@bp.get("/contacts/<key>/export.json")
@admin_required
def export(key: str) -> Response | tuple[str, int]:
    """The same document as GET /api/v1/contacts/{wa_id}/export (GDPR Art. 15/20)."""
    app_services = services()
    with Session(app_services.engine) as db:
        found = find_contact(db, key=key)
        if found is None:
            return not_found(key)
        suppressed = is_suppressed(db, key=app_services.settings.suppression_key, wa_id=found.wa_id)
        document = export_shape(held_on(db, contact=found), app_services, suppressed=suppressed)
    record("contact_exported", contact_key=found.wa_id or found.user_id)
    log.info("console %s exported %s", _user(), mask_recipient(found.wa_id or found.user_id))
    response = jsonify(document)
    response.headers["Content-Disposition"] = 'attachment; filename="contact-export.json"'
    return response
