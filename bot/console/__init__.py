"""The support console: staff review conversations and consent histories, and resolve the inbox
of webhook bodies that could not be read; admins also export, erase, read the audit log and end
sessions.

Staff never change consent here: consent is the customer's act, and consent collected elsewhere
is recorded through the business API.
"""

from __future__ import annotations

import logging
from datetime import timedelta

from flask import Blueprint, Flask

bp = Blueprint(
    "console",
    __name__,
    url_prefix="/console",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
log = logging.getLogger("bot.console")


def init_app(app: Flask) -> None:
    from bot.console import admin, auth, dashboard, views  # noqa: F401  (routes register on bp)
    from bot.console.sessions import ConsoleSessionInterface
    from bot.wiring.services import services

    settings = services(app).settings
    app.session_interface = ConsoleSessionInterface()
    app.config.update(
        SESSION_COOKIE_NAME="optin_console",
        SESSION_COOKIE_PATH="/console",  # nothing outside the console needs the session
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_SECURE=settings.console_secure_cookies,
        # The cookie outlives no idle session; the server decides when a session has ended.
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.console_idle_minutes),
    )
    app.register_blueprint(bp)
    if not settings.console_users:
        log.info("CONSOLE_USERS is not set: the support console at /console is disabled")
