"""Admin pages: erasing a contact, the audit log, and ending staff sessions.

Erasure is the API's erasure (storage.erasure.erase_contact), confirmed by typing the contact's
number or user id, and recorded in the audit log in the same transaction.
"""

from __future__ import annotations

from flask import Response, redirect, render_template, request, url_for
from sqlmodel import Session

from bot.console import bp, log
from bot.console.auth import csrf_ok
from bot.console.sessions import session_limits, staff_session
from bot.console.staff import admin_required, current_user, record, role_of, staff
from bot.console.views import not_found, page_number
from bot.wiring.audit import ACTIONS, canonical_key, subject_of
from bot.wiring.logmask import fingerprint, mask_recipient
from bot.wiring.services import services
from storage.audit import AuditFilter, audit_page
from storage.console_sessions import active_sessions, end_sessions_of
from storage.contacts import find_contact
from storage.db import session_scope
from storage.erasure import erase_contact
from storage.models import Contact
from storage.types import utcnow

EVERYONE = "*"


def confirmed(typed: str, contact: Contact) -> bool:
    """The contact's number (in any usual spelling) or its user id, typed in full."""
    if not typed.strip():
        return False
    return canonical_key(typed) in {contact.wa_id, contact.user_id} - {None}


def erased_by(username: str) -> str:
    """Who erased, in the erasure record's 16 characters: API erasures name their token there."""
    return f"console:{fingerprint(username)}"


@bp.post("/contacts/<key>/erase")
@admin_required
def erase(key: str) -> str | tuple[str, int]:
    if not csrf_ok():
        return render_template("console/error.html", message="The form had expired."), 400
    app_services = services()
    user = current_user() or "?"
    with session_scope(app_services.engine) as db:
        found = find_contact(db, key=key)
        if found is None or found.id is None:
            return not_found(key)
        if not confirmed(request.form.get("confirm", ""), found):
            message = (
                "Nothing was erased: type the contact's WhatsApp number or user id exactly to "
                "confirm the erasure."
            )
            return render_template("console/error.html", message=message), 400
        identity = found.wa_id or found.user_id
        erasure = erase_contact(
            db,
            contact_id=found.id,
            key=app_services.settings.suppression_key,
            token_fingerprint=erased_by(user),
            source="console",  # what the business's consent webhook says erased it
        )
        if erasure is None:  # erased by someone else a moment ago
            return not_found(key)
        removed = {name: count for name, count in erasure.removed.items() if count}
        record("contact_erased", contact_key=identity, detail={"removed": removed}, db=db)
    masked = mask_recipient(identity)
    counts = ", ".join(f"{name}={count}" for name, count in removed.items())
    log.info("console %s erased %s: %s", user, masked, counts)
    return render_template("console/erased.html", masked=masked, removed=removed)


@bp.get("/audit")
@admin_required
def audit_log() -> str:
    app_services = services()
    action = request.args.get("action", "")
    actor = request.args.get("actor", "").strip()[:96]
    contact = request.args.get("contact", "").strip()[:128]
    subject = subject_of(contact, suppression_key=app_services.settings.suppression_key)
    # Pages after the first carry the hash, not the number typed.
    digest = subject.digest if subject else request.args.get("subject", "")[:64] or None
    where = AuditFilter(
        action=action if action in ACTIONS else None, actor=actor or None, subject_digest=digest
    )
    searched = {"action": where.action, "actor": where.actor}
    record(
        "audit_viewed",
        contact_key=contact or None,  # who looked up a person's trail is worth knowing too
        detail={k: v for k, v in searched.items() if v} or None,
    )
    with Session(app_services.engine) as db:
        listing = audit_page(db, where=where, page=page_number())
    return render_template(
        "console/audit.html",
        listing=listing,
        actions=ACTIONS,
        where=where,
        # Never echoed as typed: the number searched for may be an erased one.
        contact_masked=subject.masked if subject else ("(by hash)" if digest else None),
    )


@bp.get("/sessions")
@admin_required
def sessions() -> str:
    app_services = services()
    with Session(app_services.engine) as db:
        live = active_sessions(db, now=utcnow(), limits=session_limits(app_services.settings))
    mine = staff_session()
    return render_template(
        "console/sessions.html",
        sessions=live,
        roles={name: role_of(name) for name in staff()},
        mine=mine.session_id if mine else None,
    )


@bp.post("/sessions/end")
@admin_required
def end_sessions() -> Response | tuple[str, int]:
    """Sign one staff member out everywhere, or everyone (the admin included)."""
    if not csrf_ok():
        return render_template("console/error.html", message="The form had expired."), 400
    whose = request.form.get("username", "")
    username = None if whose == EVERYONE else whose
    if username is not None and username not in staff():
        return render_template("console/error.html", message="No such staff member."), 400
    me = current_user()
    with session_scope(services().engine) as db:
        ended = end_sessions_of(db, username=username)
        record("sessions_ended", detail={"of": username or "everyone", "ended": ended}, db=db)
    log.info("console %s ended %d session(s) of %s", me, ended, username or "everyone")
    if username is None or username == me:
        signed_in = staff_session()
        if signed_in is not None:
            signed_in.clear()
        return redirect(url_for("console.login"))
    return redirect(url_for("console.sessions"))
