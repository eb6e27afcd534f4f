"""Console sign-in and sign-out, CSRF on every form, and the headers every page carries.

Staff come from CONSOLE_USERS; a signed-in session lives on the server (bot.console.sessions);
failed sign-ins are throttled per username and address and per address (bot.console.throttle).
Every sign-in, failed or refused, and every sign-out is written to the audit log.
"""

from __future__ import annotations

import functools
import hmac
import math
import secrets
from urllib.parse import urlsplit

import click
from flask import Response, redirect, render_template, request, session, url_for
from flask.cli import AppGroup
from werkzeug.security import check_password_hash, generate_password_hash

from bot.console import bp, log
from bot.console.sessions import CSRF_KEY, SEEN_KEY, USER_KEY, begin_staff_session, staff_session
from bot.console.staff import client_address, current_user, record, staff
from bot.console.throttle import USERNAME, SignInThrottle
from bot.wiring.services import services

__all__ = ["CSRF_KEY", "SEEN_KEY", "USER_KEY", "csrf_ok", "csrf_token"]

PASSWORD_MIN = 12
# Failed sign-ins allowed, within the window that began with the first, for one username from
# one address, and for one address whatever the usernames (a spray across accounts).
LOGIN_FAILURES_ALLOWED = 5
LOGIN_FAILURES_PER_ADDRESS = 20
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
# Reachable without signing in (the disabled check still applies to them).
OPEN_ENDPOINTS = frozenset({"console.login", "console.static"})


def throttle() -> SignInThrottle:
    return SignInThrottle(
        store=services().store,
        window_seconds=LOGIN_FAILURE_WINDOW_SECONDS,
        per_username=LOGIN_FAILURES_ALLOWED,
        per_address=LOGIN_FAILURES_PER_ADDRESS,
    )


@functools.cache
def _dummy_hash() -> str:
    """Checked for unknown usernames, so a miss costs as long as a wrong password."""
    return generate_password_hash(secrets.token_urlsafe(16))


def credentials_ok(username: str, password: str) -> bool:
    known = staff().get(username)
    try:
        matched = check_password_hash(known or _dummy_hash(), password)
    except ValueError:  # shaped like a hash, but with parameters werkzeug cannot read
        log.error("console account %r has an unusable hash in CONSOLE_USERS", username)
        return False
    return matched and known is not None


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    expected = session.get(CSRF_KEY)
    given = request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def safe_next(target: str | None) -> str:
    """Only a console path on this site: never an open redirect."""
    if target:
        parts = urlsplit(target)
        if (
            not parts.scheme
            and not parts.netloc
            and parts.path.startswith("/console/")
            and "\\" not in target
            and not target.startswith("//")
            and target.isprintable()  # CR, LF or NUL would split or break the Location header
        ):
            return target
    return url_for("console.index")


@bp.app_template_global("csrf_token")
def _csrf_token_global() -> str:
    return csrf_token()


@bp.before_request
def guard() -> Response | tuple[str, int] | None:
    if not services().settings.console_users:
        return render_template("console/disabled.html"), 403
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    if current_user() is None:
        return redirect(url_for("console.login", next=request.full_path.rstrip("?")))
    return None


@bp.after_request
def protect(response: Response) -> Response:
    """Pages carry personal data: not cached, not framed, and no number leaks in a Referer."""
    if request.endpoint != "console.static":
        response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "no-referrer"
    response.headers["Content-Security-Policy"] = (
        "default-src 'none'; style-src 'self'; img-src 'self'; form-action 'self'; "
        "frame-ancestors 'none'; base-uri 'none'"
    )
    return response


def _login_page(target: str, error: str, status: int) -> tuple[str, int]:
    return render_template("console/login.html", next=target, error=error), status


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    target = safe_next(request.values.get("next"))
    if current_user() is not None:
        return redirect(target)  # already signed in: sign out first to switch accounts
    if request.method == "GET":
        return render_template("console/login.html", next=target)
    if not csrf_ok():
        log.warning("console login refused: missing or wrong CSRF token")
        return _login_page(target, "The form had expired. Please sign in again.", 400)
    username = request.form.get("username", "").strip()[:64]
    known = username in staff()
    actor = username if known else "(unknown username)"  # never a password typed as a name
    address = client_address()
    guard_ = throttle()
    refusal = guard_.refusal(username, address)
    if refusal is not None:
        # Refused without checking the password: a right guess now would teach nothing.
        log.warning("console login refused for %r: too many failed attempts", username)
        if refusal.first:  # once a window: a flood of refused attempts adds no rows
            record("sign_in_refused", actor=actor, detail={"too_many_failures_for": refusal.reason})
        minutes = math.ceil(refusal.seconds / 60)
        which = "for this username" if refusal.reason == USERNAME else "from this address"
        page, status = _login_page(
            target,
            f"Too many failed sign-ins {which}. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}.",
            429,
        )
        return Response(page, status, {"Retry-After": str(math.ceil(refusal.seconds))})
    if not credentials_ok(username, request.form.get("password", "")):
        guard_.failed(username, address)
        log.warning("console login failed for %r", username)
        record("sign_in_failed", actor=actor)
        return _login_page(target, "Unknown username or password.", 401)
    guard_.succeeded(username, address)
    begin_staff_session(username, address=address, user_agent=request.user_agent.string)
    record("sign_in", actor=username)
    log.info("console %s signed in", username)
    return redirect(target)


@bp.post("/logout")
def logout() -> Response | tuple[str, int]:
    if not csrf_ok():
        return render_template("console/error.html", message="The form had expired."), 400
    user = current_user()
    record("sign_out", actor=user)
    log.info("console %s signed out", user)
    signed_in = staff_session()
    (signed_in if signed_in is not None else session).clear()  # ends it on the server
    return redirect(url_for("console.login"))


console_cli = AppGroup("console", help="The support console.")


@console_cli.command("hash-password")
def hash_password() -> None:
    """Prompt for a password (twice, hidden) and print its hash for CONSOLE_USERS."""
    password = click.prompt(
        "Password", hide_input=True, confirmation_prompt=True, err=True, type=str
    )
    if len(password) < PASSWORD_MIN:
        raise click.ClickException(f"use at least {PASSWORD_MIN} characters")
    click.echo(generate_password_hash(password))
