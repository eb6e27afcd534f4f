"""Liveness and readiness for load balancers and orchestrators."""

from __future__ import annotations

import logging

from flask import Blueprint, Flask, Response, jsonify

from bot.outbound.pause import paused_reason
from bot.wiring.services import services
from storage import migrate
from storage.db import ping

log = logging.getLogger(__name__)
bp = Blueprint("health", __name__)


@bp.get("/healthz")
def healthz() -> Response:
    return jsonify({"status": "ok"})


@bp.get("/readyz")
def readyz() -> tuple[Response, int]:
    app_services = services()
    checks: dict[str, str] = {}
    try:
        ping(app_services.engine)
        checks["database"] = "ok"
        current = migrate.current_revision(app_services.engine)
        head = migrate.head_revision(app_services.settings.database_url)
        checks["schema"] = (
            "ok" if current == head else f"at {current}, needs {head}: run `flask db upgrade`"
        )
    except Exception as exc:  # any failure means not ready; the reason is reported
        checks["database"] = f"unavailable: {exc.__class__.__name__}"
    ready = all(value == "ok" for value in checks.values())
    if app_services.settings.redis_url:
        # Without Redis the webhook still stores and the dispatcher still sends (paced per
        # process): degraded, not down, so a load balancer keeps a healthy intake in service.
        problem = app_services.redis_problem()
        checks["redis"] = f"degraded: {problem}" if problem else "ok"
    body: dict[str, object] = {"status": "ready" if ready else "not ready", "checks": checks}
    if ready:
        # Sending can be paused (Meta rejected the token) while intake stays healthy.
        reason = paused_reason(app_services.engine, app_services.settings.access_token)
        body["dispatch"] = f"paused: {reason}" if reason else "running"
    return jsonify(body), 200 if ready else 503


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
