"""Console sessions on the server, behind Flask's session interface.

Before sign-in the session is Flask's signed cookie: it holds the sign-in form's CSRF token and
nothing that grants access. Signing in starts a session on the server (a console_session row);
the cookie then names it by a random token and carries nothing else. Sign-out, an admin, the
idle timeout or the absolute lifetime delete the row, and every copy of the cookie dies with it,
so a cookie forged with a leaked SECRET_KEY or copied before sign-out opens nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask, Request, Response, g, has_request_context, session
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface

from bot.wiring.services import services
from bot.wiring.settings import Settings
from storage.console_sessions import (
    SessionLimits,
    end_session,
    live_session,
    start_session,
    touch_session,
)
from storage.db import session_scope
from storage.models import ConsoleSession
from storage.types import utcnow

SID_KEY = "sid"  # in the signed cookie: the token naming the server-side session
USER_KEY = "console_user"
SEEN_KEY = "seen"
CSRF_KEY = "csrf"
NEW_SESSION = "console_new_session"  # in g: the token of a session begun by this request
# last_seen_at is written at most this often: the idle timeout is exact to within a minute,
# and browsing the console does not write a row on every page.
TOUCH_EVERY_SECONDS = 60
WEBHOOK_PATH = "/webhook"


def session_limits(settings: Settings) -> SessionLimits:
    return SessionLimits(
        idle=timedelta(minutes=settings.console_idle_minutes),
        lifetime=timedelta(hours=settings.console_session_hours),
    )


class StaffSession(SecureCookieSession):
    """A signed-in session: a view of its row. The user and the CSRF token are fixed at sign-in;
    only the time last seen changes, and clearing the session ends it on the server."""

    KEYS = frozenset({USER_KEY, SEEN_KEY, CSRF_KEY})

    def __init__(self, token: str, row: ConsoleSession) -> None:
        seen = int(row.last_seen_at.timestamp())
        super().__init__({USER_KEY: row.username, SEEN_KEY: seen, CSRF_KEY: row.csrf_token})
        self.token = token
        self.session_id = row.id
        self.stored_seen = seen
        self.started_at = row.created_at

    def __setitem__(self, key: str, value: Any) -> None:
        if key not in self.KEYS:
            raise KeyError(f"a console session keeps only {sorted(self.KEYS)}, not {key!r}")
        super().__setitem__(key, value)

    @property
    def permanent(self) -> bool:
        return True

    @permanent.setter
    def permanent(self, value: bool) -> None:
        """Always permanent: its cookie lasts for the idle timeout, renewed as it is used."""


def staff_session() -> StaffSession | None:
    current = session._get_current_object()  # type: ignore[attr-defined]
    return current if isinstance(current, StaffSession) else None


def begin_staff_session(username: str, *, address: str, user_agent: str | None) -> None:
    """Sign username in: a new server-side session, whose token this response's cookie carries.

    Whatever session the browser had ends here, so a token planted before sign-in is never the
    signed-in one (session fixation).
    """
    app_services = services()
    session.clear()
    with session_scope(app_services.engine) as db:
        token, _ = start_session(
            db,
            username=username,
            now=utcnow(),
            limits=session_limits(app_services.settings),
            address=address,
            user_agent=user_agent,
        )
    setattr(g, NEW_SESSION, token)


class ConsoleSessionInterface(SecureCookieSessionInterface):
    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if request.path == WEBHOOK_PATH:
            # Meta's posts never carry the cookie nor use a session: building the cookie's
            # signer for each was a tenth of a status's CPU in the app.
            return self.make_null_session(app)
        signed = super().open_session(app, request)
        token = signed.get(SID_KEY) if signed is not None else None
        if not isinstance(token, str) or not self._for_console(app, request):
            return signed
        app_services = services(app)
        with session_scope(app_services.engine) as db:
            row = live_session(
                db, token=token, now=utcnow(), limits=session_limits(app_services.settings)
            )
        if row is None:
            ended = self.session_class()
            ended.modified = True  # the dead cookie is removed from the browser
            return ended
        return StaffSession(token, row)

    def save_session(self, app: Flask, session: Any, response: Response) -> None:
        begun = g.pop(NEW_SESSION, None) if has_request_context() else None
        if not isinstance(session, StaffSession) and begun is None:
            super().save_session(app, session, response)
            return
        cookie = self.session_class()
        engine = services(app).engine
        if isinstance(session, StaffSession) and (not session or begun):
            # Cleared (signed out, ended by an admin, its account gone) or replaced by a sign-in.
            with session_scope(engine) as db:
                end_session(db, session_id=session.session_id)
        if begun:
            cookie[SID_KEY] = begun
            cookie.permanent = True
            super().save_session(app, cookie, response)
            return
        if not session:
            cookie.modified = True  # so the cookie is deleted
            super().save_session(app, cookie, response)
            return
        seen = session.get(SEEN_KEY)
        if isinstance(seen, int | float) and abs(seen - session.stored_seen) >= TOUCH_EVERY_SECONDS:
            with session_scope(engine) as db:
                touch_session(
                    db, session_id=session.session_id, seen_at=datetime.fromtimestamp(seen, UTC)
                )
        cookie[SID_KEY] = session.token
        cookie.permanent = True
        cookie.accessed = session.accessed
        super().save_session(app, cookie, response)

    @staticmethod
    def _for_console(app: Flask, request: Request) -> bool:
        """Only the console uses sessions: a stray cookie elsewhere costs no database query."""
        return request.path.startswith(app.config["SESSION_COOKIE_PATH"] or "/console")
