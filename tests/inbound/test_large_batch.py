"""Meta batches up to 1,000 updates in one body: every one is stored and answered.

How long that takes is measured by `make bench` (tests/bench/bench_webhook.py), not here: the
answer has to come within gunicorn's 30 s worker timeout, and a shared test machine's clock says
little about that.
"""

from __future__ import annotations

import io

import pytest
from flask import Flask
from sqlmodel import Session, col, func, select

from bot.dev import simulate
from bot.graph import ConsoleTransport
from bot.wiring.services import services
from storage.models import Contact, Message
from storage.ratelimit import MemoryRateLimiter
from tests.clock import ManualClock, SlotTimes

BATCH = 1000


@pytest.fixture(params=["suite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, str]) -> dict[str, str]:
    config = {**app_config, "MARK_INBOUND_READ": "0"}
    if request.param == "postgresql":
        config["DATABASE_URL"] = request.getfixturevalue("postgres_url")
    return config


# A thousand messages through the whole dialogue and back out: 30 s to two minutes on a loaded
# two-core machine, so the suite's two minutes before a hang fails a test are not enough here.
@pytest.mark.slow
@pytest.mark.timeout(300)
def test_a_batch_of_1000_messages_is_stored_and_every_sender_answered(app: Flask, engine) -> None:
    senders = [f"1555{index:07d}" for index in range(BATCH)]
    body = simulate.batch_body(
        *(simulate.text_body(wa_id=wa_id, text="hello") for wa_id in senders)
    )
    assert len(body) < 3 * 1024 * 1024  # under Meta's payload limit
    secret = services(app).settings.app_secret
    response = app.test_client().post(
        "/webhook", data=body, headers={"X-Hub-Signature-256": simulate.sign(body, secret)}
    )

    assert response.status_code == 200
    assert response.json["messages"] == BATCH and response.json["malformed"] == 0
    transport = ConsoleTransport(stream=io.StringIO())
    # The rate's slots taken on a clock that stands still, their waits noted and not waited
    # out: pacing is tests/outbound/test_rate.py's to check, and costs this test nothing.
    clock = ManualClock()
    services(app).dispatcher(
        transport=transport,
        concurrency=8,
        batch_size=250,
        limiter=MemoryRateLimiter(1000, clock=clock),
        sleep=SlotTimes(clock).sleep,
    ).drain()
    prompted = [payload["to"] for _, payload, _ in transport.sent if payload.get("to")]
    assert sorted(prompted) == senders  # one consent prompt to each, none twice
    with Session(engine) as session:
        stored = session.exec(
            select(func.count())
            .select_from(Message)
            .join(Contact, col(Contact.id) == Message.contact_id)
            .where(Message.direction == "in", col(Contact.wa_id).in_(senders))
        ).one()
    assert stored == BATCH
