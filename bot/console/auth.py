"""Console sign-in: staff from CONSOLE_USERS, a signed-cookie session, CSRF on every form."""

from __future__ import annotations

import functools
import hmac
import math
import secrets
import time
from urllib.parse import urlsplit

import click
import redis
from flask import Response, redirect, render_template, request, session, url_for
from flask.cli import AppGroup
from werkzeug.security import check_password_hash, generate_password_hash

from bot.console import IDLE_LIMIT, bp, log
from bot.wiring.services import services

USER_KEY = "console_user"
SEEN_KEY = "seen"
CSRF_KEY = "csrf"
PASSWORD_MIN = 12
# After this many failed sign-ins for one username, that username is refused until the window
# that began with the first failure ends: password guessing gets a handful of tries an hour.
LOGIN_FAILURES_ALLOWED = 5
LOGIN_FAILURE_WINDOW_SECONDS = 15 * 60
# Reachable without signing in (the disabled check still applies to them).
OPEN_ENDPOINTS = frozenset({"console.login", "console.static"})


def staff() -> dict[str, str]:
    return dict(services().settings.console_users)


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


def _failures_key(username: str) -> str:
    return f"console-login-failures:{username.casefold()}"


def locked_for(username: str) -> float:
    """Seconds until this username may try again (0: it may now). Shared through Redis."""
    try:
        failures, left = services().store.counter(_failures_key(username))
    except redis.RedisError as exc:
        # Staff must still be able to sign in while Redis is away; the hash stays slow.
        log.error("console sign-in throttle unavailable (%s)", type(exc).__name__)
        return 0.0
    return left if failures >= LOGIN_FAILURES_ALLOWED else 0.0


def count_failure(username: str) -> None:
    try:
        services().store.incr(_failures_key(username), LOGIN_FAILURE_WINDOW_SECONDS)
    except redis.RedisError as exc:
        log.error("console sign-in throttle unavailable (%s)", type(exc).__name__)


def forget_failures(username: str) -> None:
    try:
        services().store.delete(_failures_key(username))
    except redis.RedisError as exc:
        log.error("console sign-in throttle unavailable (%s)", type(exc).__name__)


def csrf_token() -> str:
    token = session.get(CSRF_KEY)
    if not token:
        token = session[CSRF_KEY] = secrets.token_urlsafe(32)
    return token


def csrf_ok() -> bool:
    expected = session.get(CSRF_KEY)
    given = request.form.get("csrf_token", "")
    return bool(expected) and hmac.compare_digest(expected.encode(), given.encode())


def current_user() -> str | None:
    """The signed-in staff member, if the session is fresh and the account still exists."""
    user = session.get(USER_KEY)
    seen = session.get(SEEN_KEY)
    if not user:
        return None
    if (
        user not in staff()
        or not isinstance(seen, int | float)
        or time.time() - seen > IDLE_LIMIT.total_seconds()
    ):
        session.clear()
        return None
    session[SEEN_KEY] = int(time.time())
    return user


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


@bp.route("/login", methods=["GET", "POST"])
def login() -> Response | str | tuple[str, int]:
    target = safe_next(request.values.get("next"))
    if request.method == "GET":
        if current_user() is not None:
            return redirect(target)
        return render_template("console/login.html", next=target)
    if not csrf_ok():
        log.warning("console login refused: missing or wrong CSRF token")
        return render_template(
            "console/login.html",
            next=target,
            error="The form had expired. Please sign in again.",
        ), 400
    username = request.form.get("username", "").strip()[:64]
    wait = locked_for(username)
    if wait:
        # Refused without checking the password: a right guess now would teach nothing.
        log.warning("console login refused for %r: too many failed attempts", username)
        minutes = math.ceil(wait / 60)
        page = render_template(
            "console/login.html",
            next=target,
            error=f"Too many failed sign-ins for this username. Try again in {minutes} "
            f"minute{'s' if minutes != 1 else ''}.",
        )
        return Response(page, 429, {"Retry-After": str(math.ceil(wait))})
    if not credentials_ok(username, request.form.get("password", "")):
        count_failure(username)
        log.warning("console login failed for %r", username)
        return render_template(
            "console/login.html", next=target, error="Unknown username or password."
        ), 401
    forget_failures(username)
    session.clear()  # a fresh session, and a fresh CSRF token, for the signed-in user
    session.permanent = True
    session[USER_KEY] = username
    session[SEEN_KEY] = int(time.time())
    csrf_token()
    log.info("console %s signed in", username)
    return redirect(target)


@bp.post("/logout")
def logout() -> Response | tuple[str, int]:
    if not csrf_ok():
        return render_template("console/error.html", message="The form had expired."), 400
    log.info("console %s signed out", session.get(USER_KEY))
    session.clear()
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
