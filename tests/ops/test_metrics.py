"""GET /metrics: Prometheus's text format, behind METRICS_TOKEN, read from the database."""

from __future__ import annotations

import re

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

from bot import create_app
from bot.outbound.pause import PAUSE_FLAG, token_fingerprint
from bot.wiring.services import services
from storage.control import set_flag
from storage.db import session_scope
from tests.api.conftest import WA_ID, grant, say
from tests.conftest import Api, MetaWebhook

METRICS_TOKEN = "scrape-me"
SAMPLE = re.compile(r"^([a-z_]+)(\{[^}]*\})? (-?[0-9.]+)$")


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    return {**app_config, "METRICS_TOKEN": METRICS_TOKEN, "WHATSAPP_PHONE_NUMBER_ID": "1065"}


def scrape(client: FlaskClient) -> dict[str, float]:
    """Every sample by name and labels, after checking each line is in the text format."""
    response = client.get("/metrics", headers={"Authorization": f"Bearer {METRICS_TOKEN}"})
    assert response.status_code == 200
    assert response.content_type.startswith("text/plain; version=0.0.4")
    samples: dict[str, float] = {}
    for line in response.get_data(as_text=True).splitlines():
        if line.startswith("# HELP ") or line.startswith("# TYPE "):
            continue
        match = SAMPLE.match(line)
        assert match, f"not a sample line: {line!r}"
        samples[match.group(1) + (match.group(2) or "")] = float(match.group(3))
    return samples


def test_metrics_need_the_token(client: FlaskClient) -> None:
    assert client.get("/metrics").status_code == 401
    wrong = client.get("/metrics", headers={"Authorization": "Bearer guess"})
    assert wrong.status_code == 401
    assert wrong.headers["WWW-Authenticate"].startswith("Bearer")


def test_without_metrics_token_metrics_are_disabled(app_config: dict[str, str]) -> None:
    config = {k: v for k, v in app_config.items() if k != "METRICS_TOKEN"}
    app = create_app(config)
    try:
        response = app.test_client().get("/metrics", headers={"Authorization": "Bearer x"})
        assert response.status_code == 403
        assert "METRICS_TOKEN" in response.get_data(as_text=True)
    finally:
        services(app).engine.dispose()


def test_an_empty_deployment_reports_every_series_at_zero(client: FlaskClient) -> None:
    samples = scrape(client)
    assert samples['optin_outbox_rows{priority="answer",state="due"}'] == 0
    assert samples['optin_outbox_rows{priority="business",state="claimed"}'] == 0
    assert samples['optin_outbox_oldest_due_seconds{priority="business"}'] == 0
    assert samples["optin_dispatch_paused"] == 0
    assert samples['optin_consents{category="offers",state="granted"}'] == 0
    assert samples["optin_unparsable_bodies"] == 0


def test_the_backlog_consents_pause_and_support_inbox_are_counted(
    app: Flask, client: FlaskClient, api: Api, meta: MetaWebhook, engine: Engine
) -> None:
    say(meta)  # the dialogue queues its prompt and a read receipt: answers
    grant(api, categories=["orders"])
    sent = api.post("/messages", {"to": WA_ID, "category": "orders", "text": "Shipped"})
    assert sent.status_code == 202
    assert meta.post(b'{"object": "whatsapp_business_account", "entry": [').status_code == 200
    with session_scope(engine) as session:
        token = services(app).settings.access_token
        set_flag(session, PAUSE_FLAG, f"{token_fingerprint(token)} access token rejected")

    samples = scrape(client)

    assert samples['optin_outbox_rows{priority="answer",state="due"}'] >= 1
    assert samples['optin_outbox_rows{priority="business",state="due"}'] == 1
    assert samples['optin_outbox_oldest_due_seconds{priority="business"}'] >= 0
    assert samples['optin_consents{category="orders",state="granted"}'] == 1
    assert samples['optin_consents{category="offers",state="granted"}'] == 0
    assert samples["optin_dispatch_paused"] == 1
    assert samples["optin_unparsable_bodies"] == 1
