"""Who is using the console, with which role, and the record of what they do.

support reads and searches; admin also exports, erases, reads the audit log and ends sessions.
The role is read from CONSOLE_USERS on every request, so a changed role applies at once.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable
from typing import Any, ParamSpec, TypeVar

from flask import render_template, request
from sqlmodel import Session

from bot.console import log
from bot.console.sessions import SEEN_KEY, USER_KEY, staff_session
from bot.wiring.accounts import ADMIN, SUPPORT
from bot.wiring.audit import CONSOLE, audit, audit_now
from bot.wiring.services import services

P = ParamSpec("P")
R = TypeVar("R")
UNKNOWN_ADDRESS = "unknown"


def staff() -> dict[str, str]:
    return dict(services().settings.console_users)


def role_of(username: str | None) -> str | None:
    if username is None or username not in staff():
        return None
    return ADMIN if username in services().settings.console_admins else SUPPORT


def current_user() -> str | None:
    """The signed-in staff member, if the session is live and the account still exists; using
    the console keeps the session from going idle."""
    signed_in = staff_session()
    if signed_in is None:
        return None
    user = signed_in.get(USER_KEY)
    if user not in staff():
        signed_in.clear()  # the account is gone: the session ends on the server too
        return None
    signed_in[SEEN_KEY] = int(time.time())
    return user


def is_admin() -> bool:
    return role_of(current_user()) == ADMIN


def client_address() -> str:
    """The connecting address, or the one the trusted proxies name (TRUSTED_PROXY_HOPS)."""
    return request.remote_addr or UNKNOWN_ADDRESS


def record(
    action: str,
    *,
    contact_key: str | None = None,
    detail: dict[str, Any] | None = None,
    actor: str | None = None,
    db: Session | None = None,
) -> None:
    """Write one console event to the audit log: in db's transaction if given, else at once."""
    event: dict[str, Any] = {
        "channel": CONSOLE,
        "actor": actor or current_user() or "-",
        "action": action,
        "contact_key": contact_key,
        "address": client_address(),
        "detail": detail,
    }
    if db is None:
        audit_now(services(), **event)
    else:
        audit(db, services(), **event)


def admin_required(view: Callable[P, R]) -> Callable[P, R | tuple[str, int]]:
    """403 for support staff, recorded: a refused attempt is worth knowing about too."""

    @functools.wraps(view)
    def checked(*args: P.args, **kwargs: P.kwargs) -> R | tuple[str, int]:
        if not is_admin():
            user = current_user()
            key = kwargs.get("key")
            record(
                "refused",
                contact_key=key if isinstance(key, str) else None,
                detail={"page": request.endpoint},
            )
            log.warning("console %s refused %s: admin only", user, request.endpoint)
            return render_template("console/forbidden.html"), 403
        return view(*args, **kwargs)

    return checked
