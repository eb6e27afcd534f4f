"""GET /metrics: the outbox backlog, the dispatch pause, consent totals and the support inbox, in
Prometheus's text format, read from the database on each scrape so every worker answers alike.

Counts only, no personal data; still behind METRICS_TOKEN, since they show a business's volumes.
"""

from __future__ import annotations

import hmac
from collections.abc import Iterator
from datetime import datetime

from flask import Blueprint, Flask, Response, request
from sqlmodel import Session

from bot.outbound.pause import paused_reason
from bot.wiring.services import services
from storage.consent_webhooks import WebhookBacklog
from storage.consent_webhooks import backlog as webhook_backlog
from storage.consents import consent_totals
from storage.inbox import count_failed_payloads
from storage.outbox import PRIORITY_ANSWER, PRIORITY_BUSINESS, Backlog, backlog
from storage.types import utcnow

bp = Blueprint("metrics", __name__)
CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"
PRIORITY_NAMES = {PRIORITY_ANSWER: "answer", PRIORITY_BUSINESS: "business"}
STATES = ("due", "scheduled", "claimed")
CONSENT_STATES = ("granted", "unconfirmed", "withdrawn")


def _refusal() -> Response | None:
    token = services().settings.metrics_token
    if token is None:
        return Response("metrics are disabled: set METRICS_TOKEN\n", 403, mimetype="text/plain")
    given = request.headers.get("Authorization", "")
    if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
        return Response(
            "send Authorization: Bearer <METRICS_TOKEN>\n",
            401,
            {"WWW-Authenticate": 'Bearer realm="metrics"'},
            mimetype="text/plain",
        )
    return None


@bp.get("/metrics")
def metrics() -> Response:
    refusal = _refusal()
    if refusal is not None:
        return refusal
    return Response("".join(_lines()), 200, content_type=CONTENT_TYPE)


def _metric(name: str, kind: str, help_text: str) -> Iterator[str]:
    yield f"# HELP {name} {help_text}\n"
    yield f"# TYPE {name} {kind}\n"


def _labels(**labels: str) -> str:
    def escape(value: str) -> str:
        return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")

    return "{" + ",".join(f'{key}="{escape(value)}"' for key, value in labels.items()) + "}"


def _lines() -> Iterator[str]:
    app_services = services()
    now = utcnow()
    with Session(app_services.engine) as session:
        waiting = backlog(session, now=now)
        consents = consent_totals(session)
        unresolved = count_failed_payloads(session)
        webhooks = webhook_backlog(session)
    paused = paused_reason(app_services.engine, app_services.settings.access_token) is not None

    yield from _outbox_lines(waiting, now)
    yield from _metric(
        "optin_dispatch_paused",
        "gauge",
        "1 while sending is paused because Meta rejected the access token (error 190).",
    )
    yield f"optin_dispatch_paused {int(paused)}\n"
    yield from _consent_lines(consents, app_services.catalog.category_ids)
    yield from _metric(
        "optin_unparsable_bodies",
        "gauge",
        "Webhook bodies or items kept for support because they could not be parsed.",
    )
    yield f"optin_unparsable_bodies {unresolved}\n"
    yield from _webhook_lines(webhooks, now)
    if app_services.settings.redis_url:
        yield from _metric(
            "optin_redis_up",
            "gauge",
            "1 while the configured Redis answers; 0 while intake and sending run without it.",
        )
        yield f"optin_redis_up {int(app_services.redis_problem() is None)}\n"


def _outbox_lines(waiting: list[Backlog], now: datetime) -> Iterator[str]:
    # Every priority and state is reported, zero included, so that alerts see the series.
    rows = {(b.priority, b.state): b for b in waiting}
    yield from _metric(
        "optin_outbox_rows",
        "gauge",
        "Messages and read receipts in the outbox: due now, scheduled for a retry, or claimed.",
    )
    for priority, name in PRIORITY_NAMES.items():
        for state in STATES:
            found = rows.get((priority, state))
            count = found.rows if found else 0
            yield f"optin_outbox_rows{_labels(priority=name, state=state)} {count}\n"
    yield from _metric(
        "optin_outbox_oldest_due_seconds",
        "gauge",
        "How long the oldest due, unclaimed row has waited (0 when none): the sending delay.",
    )
    for priority, name in PRIORITY_NAMES.items():
        due = rows.get((priority, "due"))
        age = (now - due.oldest_due_at).total_seconds() if due and due.oldest_due_at else 0.0
        yield f"optin_outbox_oldest_due_seconds{_labels(priority=name)} {max(0.0, age):.3f}\n"


def _consent_lines(
    consents: list[tuple[str, bool, bool, int]], category_ids: tuple[str, ...]
) -> Iterator[str]:
    yield from _metric(
        "optin_consents",
        "gauge",
        "Contacts by category and current consent (unconfirmed: awaiting a double opt-in).",
    )
    totals = {(c, state): 0 for c in category_ids for state in CONSENT_STATES}
    for category, granted, confirmed, count in consents:
        state = "withdrawn" if not granted else ("granted" if confirmed else "unconfirmed")
        totals[(category, state)] = totals.get((category, state), 0) + count
    for (category, state), count in sorted(totals.items()):
        yield f"optin_consents{_labels(category=category, state=state)} {count}\n"


def _webhook_lines(webhooks: WebhookBacklog, now: datetime) -> Iterator[str]:
    yield from _metric(
        "optin_consent_webhooks_waiting",
        "gauge",
        "Consent changes not yet answered 2xx by the business's webhook receiver.",
    )
    yield f"optin_consent_webhooks_waiting {webhooks.waiting}\n"
    yield from _metric(
        "optin_consent_webhooks_failing",
        "gauge",
        "Of those, the ones whose last delivery failed (waiting for a retry).",
    )
    yield f"optin_consent_webhooks_failing {webhooks.failing}\n"
    yield from _metric(
        "optin_consent_webhooks_failed_attempts",
        "gauge",
        "Failed deliveries of the consent changes still waiting.",
    )
    yield f"optin_consent_webhooks_failed_attempts {webhooks.failed_attempts}\n"
    yield from _metric(
        "optin_consent_webhooks_oldest_seconds",
        "gauge",
        "How long the oldest waiting consent change has waited (0 when none).",
    )
    age = (now - webhooks.oldest_at).total_seconds() if webhooks.oldest_at else 0.0
    yield f"optin_consent_webhooks_oldest_seconds {max(0.0, age):.3f}\n"


def init_app(app: Flask) -> None:
    app.register_blueprint(bp)
