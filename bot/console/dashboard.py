"""The dashboard: consent and sending at a glance, for every signed-in staff member.

Counts only, drawn on the server as inline SVG (bot.console.charts): no script, no front-end
build, nothing fetched from elsewhere.
"""

from __future__ import annotations

from datetime import datetime, time

from flask import render_template, request
from sqlmodel import Session

from bot.console import bp
from bot.console.figures import (
    backlog_chart,
    category_figures,
    failures_chart,
    period_days,
    reasons_chart,
    webhook_figure,
)
from bot.wiring.services import services
from storage.dashboard import (
    decisions_by_day,
    failures_by_code,
    webhook_backlog,
    withdrawal_words,
)
from storage.outbox import backlog
from storage.types import utcnow

PERIODS = (7, 30, 90)  # days
DEFAULT_PERIOD = 30


@bp.get("/dashboard")
def dashboard() -> str:
    raw = request.args.get("days", "")
    period = int(raw) if raw.isdigit() and int(raw) in PERIODS else DEFAULT_PERIOD
    app_services = services()
    now = utcnow()
    days = period_days(now, period)
    since = datetime.combine(days[0], time.min, tzinfo=now.tzinfo)
    with Session(app_services.engine) as db:
        decisions = decisions_by_day(db, since=since)
        withdrawals = withdrawal_words(db, since=since)
        waiting = backlog(db, now=now)
        failures = failures_by_code(db, since=since)
        webhooks = webhook_backlog(db, now=now)
    oldest_due = min(
        (b.oldest_due_at for b in waiting if b.state == "due" and b.oldest_due_at), default=None
    )
    return render_template(
        "console/dashboard.html",
        period=period,
        periods=PERIODS,
        since=days[0],
        categories=category_figures(decisions, app_services.catalog, days),
        reasons=reasons_chart(withdrawals, app_services.catalog),
        outbox=backlog_chart(waiting),
        waiting_for=(now - oldest_due) if oldest_due else None,
        failures=failures_chart(failures),
        any_failures=bool(failures),
        webhooks=webhook_figure(webhooks, now),
        webhooks_on=app_services.settings.consent_webhook_url is not None,
    )
