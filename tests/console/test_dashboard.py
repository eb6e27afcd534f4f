"""The dashboard: opt-ins and opt-outs per category and day, why people opted out, the outbox,
failed sends and the consent webhook backlog, drawn as inline SVG by the server under the strict
CSP."""

from __future__ import annotations

import html
import re
from datetime import date, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.console.charts import Bar, daily_in_and_out, horizontal_bars
from bot.console.figures import age_words, webhook_figure
from storage.dashboard import webhook_backlog as backlog_at
from storage.types import utcnow

TIP = re.compile(r"<title>([^<]+): (\d+)</title>")


def tips(section: str) -> dict[str, int]:
    return {html.unescape(label): int(value) for label, value in TIP.findall(section)}


def section(page: str, anchor: str) -> str:
    return page.split(f'id="{anchor}"', 1)[1].split("</section>", 1)[0]


def test_the_dashboard_draws_consent_reasons_outbox_and_failures(
    support_client: FlaskClient, activity
) -> None:
    response = support_client.get("/console/dashboard")
    assert response.status_code == 200
    page = response.get_data(as_text=True)
    # two categories, reasons, outbox, failures, consent webhook
    assert page.count('<svg class="chart"') == 6
    assert "<script" not in page and "style=" not in page  # the CSP forbids both
    assert "default-src 'none'" in response.headers["Content-Security-Policy"]

    offers = page.split('id="category-offers"', 1)[1].split("</figure>", 1)[0]
    totals = re.findall(r'class="total-(\w+)">(\d+)<', offers)
    assert dict(totals) == {"granted": "4", "withdrawn": "4", "declined": "0"}
    orders = page.split('id="category-orders"', 1)[1].split("</figure>", 1)[0]
    assert dict(re.findall(r'class="total-(\w+)">(\d+)<', orders)) == {
        "granted": "2",
        "withdrawn": "2",
        "declined": "1",
    }
    today = utcnow().date().isoformat()
    assert f"<title>{today}: 4 in</title>" in offers

    assert tips(section(page, "reasons")) == {
        "STOP or another stop keyword": 2,
        "In their own words": 1,
        "Meta's marketing stop": 1,
        "Meta refused marketing: 131050": 1,
        "Recorded through the API": 1,
    }
    assert tips(section(page, "outbox"))["business sends, due now"] == 2
    assert tips(section(page, "outbox"))["business sends, retrying later"] == 1
    failures = tips(section(page, "failures"))
    assert failures == {"131050 User opted out of marketing": 2, "131026 Undeliverable": 1}


def test_the_period_is_chosen_from_a_few(support_client: FlaskClient, activity) -> None:
    week = support_client.get("/console/dashboard?days=7").get_data(as_text=True)
    assert "<strong>7 days</strong>" in week
    since = (utcnow().date() - timedelta(days=6)).isoformat()
    assert f"Since {since}" in week
    odd = support_client.get("/console/dashboard?days=5000").get_data(as_text=True)
    assert "<strong>30 days</strong>" in odd


def test_an_empty_dashboard_still_draws(support_client: FlaskClient) -> None:
    page = support_client.get("/console/dashboard").get_data(as_text=True)
    assert page.count('<svg class="chart"') == 5  # no failures: said in words instead
    assert "No send failed in this period." in page
    webhooks = section(page, "consent-webhooks")
    assert tips(webhooks) == {}  # no bar drawn for nothing
    assert "Every consent change has reached the business's receiver." in webhooks
    assert "Consent webhooks are off" in webhooks  # CONSENT_WEBHOOK_URL is not set here


WEBHOOK_BARS = {
    "new, due now": 2,
    "new, being sent": 1,
    "failing, retry due now": 1,
    "failing, retrying later": 2,
}


def test_the_consent_webhook_backlog_is_counted_by_state_and_error(
    engine: Engine, webhook_backlog: datetime
) -> None:
    with Session(engine) as db:
        groups = backlog_at(db, now=webhook_backlog)
    assert sum(g.rows for g in groups) == 6
    figure = webhook_figure(groups, webhook_backlog)
    assert (figure.waiting, figure.failing, figure.failed_attempts) == (6, 3, 4)
    assert figure.oldest_age == timedelta(hours=2)
    assert figure.oldest_words == "2 h 0 min"
    assert figure.errors == (("HTTP 500", 2), ("ConnectTimeout", 1))
    drawn = {
        r.tip.rsplit(": ", 1)[0]: (int(r.tip.rsplit(": ", 1)[1]), r.css) for r in figure.chart.rects
    }
    assert drawn == {
        "new, due now": (2, "state-due"),
        "new, being sent": (1, "state-claimed"),
        "failing, retry due now": (1, "failing state-due"),
        "failing, retrying later": (2, "failing state-scheduled"),
    }
    widths = {r.tip: r.width for r in figure.chart.rects}
    assert widths["new, due now: 2"] == pytest.approx(2 * widths["new, being sent: 1"])
    # A day on, the retries have come due and the sending lease has run out.
    with Session(engine) as db:
        later = webhook_figure(
            backlog_at(db, now=webhook_backlog + timedelta(days=2)),
            webhook_backlog + timedelta(days=2),
        )
    assert {r.tip for r in later.chart.rects} == {"new, due now: 3", "failing, retry due now: 3"}
    assert later.oldest_words == "2 d 2 h"


def test_the_dashboard_draws_the_consent_webhook_backlog(
    support_client: FlaskClient, webhook_backlog: datetime
) -> None:
    page = support_client.get("/console/dashboard").get_data(as_text=True)
    assert page.count('<svg class="chart"') == 5  # no failed sends in this one
    webhooks = section(page, "consent-webhooks")
    assert "<title>What waits to reach the consent webhook</title>" in webhooks
    assert tips(webhooks) == WEBHOOK_BARS
    assert webhooks.count('class="failing state-') == 2
    figures = dict(re.findall(r'class="webhook-(\w+)">([^<]+)<', webhooks))
    assert {k: figures[k] for k in ("waiting", "failing", "attempts")} == {
        "waiting": "6",
        "failing": "3",
        "attempts": "4",
    }
    assert re.fullmatch(r"2 h \d+ min", figures["oldest"])  # queued two hours before the page
    errors = re.findall(r'<li><span class="mono">([^<]+)</span>: (\d+)</li>', webhooks)
    assert errors == [("HTTP 500", "2"), ("ConnectTimeout", "1")]


@pytest.mark.parametrize(
    ("seconds", "words"),
    [
        (0, "0 s"),
        (59, "59 s"),
        (60, "1 min"),
        (3599, "59 min"),
        (3600, "1 h 0 min"),
        (7260, "2 h 1 min"),
        (86399, "23 h 59 min"),
        (86400, "1 d 0 h"),
        (183600, "2 d 3 h"),
    ],
)
def test_a_wait_is_written_as_a_person_reads_it(seconds: int, words: str) -> None:
    assert age_words(timedelta(seconds=seconds)) == words


def test_daily_bars_rise_for_opt_ins_and_hang_for_opt_outs() -> None:
    days = [date(2026, 1, 1) + timedelta(days=n) for n in range(3)]
    chart = daily_in_and_out("t", days, [0, 4, 2], [1, 0, 0])
    [line] = chart.lines
    ins = [r for r in chart.rects if r.css == "in"]
    outs = [r for r in chart.rects if r.css == "out"]
    assert [r.tip for r in ins] == ["2026-01-02: 4 in", "2026-01-03: 2 in"]
    assert all(r.y + r.height == pytest.approx(line.y1) for r in ins)
    assert ins[0].height == pytest.approx(2 * ins[1].height)
    assert [r.y for r in outs] == [line.y1]


def test_horizontal_bars_are_as_long_as_their_values() -> None:
    chart = horizontal_bars("t", [Bar("a", 10), Bar("b", 5), Bar("c", 0)])
    widths = {r.tip: r.width for r in chart.rects}
    assert widths["a: 10"] == pytest.approx(2 * widths["b: 5"])
    assert "c: 0" not in widths  # nothing drawn for nothing
    assert chart.description == "a: 10; b: 5; c: 0"
