"""The webhook against real PostgreSQL and Redis: concurrency and a database outage."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from urllib.parse import urlsplit

import pytest
import requests
from sqlmodel import Session, func, select

from bot import create_app
from bot.inbound.signature import expected_signature
from bot.wiring.services import services
from storage.models import Contact, Message
from tests.conftest import APP_SECRET, fixture_bytes
from tests.services import redis_url_or_skip
from tests.tcp_proxy import TcpProxy


def signed_post(base_url: str, body: bytes) -> int:
    return requests.post(
        f"{base_url}/webhook",
        data=body,
        headers={
            "X-Hub-Signature-256": expected_signature(body, APP_SECRET),
            "Content-Type": "application/json",
        },
        timeout=30,
    ).status_code


def message_count(engine) -> int:
    with Session(engine) as session:
        return session.exec(
            select(func.count()).select_from(Message).where(Message.direction == "in")
        ).one()


@pytest.mark.postgres
@pytest.mark.redis
def test_one_body_posted_20_times_concurrently_is_stored_once(
    app_config, postgres_url, live_server_factory
):
    app_config["DATABASE_URL"] = postgres_url
    app_config["REDIS_URL"] = redis_url_or_skip()
    app = create_app(app_config)
    base_url = live_server_factory(app)
    body = fixture_bytes("batch_two_numbers.json")
    expected = sum(
        len(change["value"].get("messages", []))
        for entry in json.loads(body)["entry"]
        for change in entry["changes"]
    )
    with ThreadPoolExecutor(max_workers=20) as pool:
        codes = list(pool.map(lambda _: signed_post(base_url, body), range(20)))
    assert codes == [200] * 20
    engine = services(app).engine
    assert message_count(engine) == expected
    with Session(engine) as session:
        assert session.exec(select(func.count()).select_from(Contact)).one() == len(
            {m.contact_id for m in session.exec(select(Message).where(Message.direction == "in"))}
        )
    engine.dispose()


@pytest.mark.postgres
def test_database_down_answers_503_and_the_redelivery_is_stored_once(
    app_config, postgres_url, live_server_factory
):
    target = urlsplit(postgres_url.replace("postgresql+psycopg", "postgresql"))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.start()
    app_config["DATABASE_URL"] = postgres_url.replace(
        f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{proxy.port}"
    )
    app = create_app(app_config)
    base_url = live_server_factory(app)
    engine = services(app).engine
    try:
        assert signed_post(base_url, fixture_bytes("text.json")) == 200
        proxy.stop()
        assert signed_post(base_url, fixture_bytes("image.json")) == 503
        assert requests.get(f"{base_url}/readyz", timeout=30).status_code == 503
        proxy.start()
        assert signed_post(base_url, fixture_bytes("image.json")) == 200
        assert signed_post(base_url, fixture_bytes("image.json")) == 200
        assert signed_post(base_url, fixture_bytes("text.json")) == 200
        assert requests.get(f"{base_url}/readyz", timeout=30).status_code == 200
        assert message_count(engine) == 2
    finally:
        proxy.stop()
        engine.dispose()
