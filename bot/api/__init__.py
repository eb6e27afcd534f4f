"""The business API under /api/v1: JSON, bearer tokens, errors as {"error", "message"}."""

from __future__ import annotations

from flask import Blueprint, Flask

bp = Blueprint("api", __name__, url_prefix="/api/v1")


def init_app(app: Flask) -> None:
    from bot.api import (  # noqa: F401  (routes register on bp)
        audience,
        audit,
        auth,
        consents,
        contacts,
        errors,
        openapi,
        privacy,
        sending,
    )

    errors.register(app)
    app.register_blueprint(bp)
