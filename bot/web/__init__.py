"""The other ways in (C28): the hosted opt-in page a business links to or embeds, and the wa.me
link and QR code that open a WhatsApp chat for posters, receipts and IVR scripts."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint(
    "optin",
    __name__,
    url_prefix="/optin",
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)


def init_app(app: Flask) -> None:
    from bot.web import links, views  # noqa: F401  (routes register on bp)

    app.register_blueprint(bp)
