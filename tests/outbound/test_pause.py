"""Pausing: an expired token stops every dispatcher until a new one is set; SQLite stand-by."""

from __future__ import annotations

from collections import Counter

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine

import bot.outbound.pause
from bot import create_app
from bot.wiring.services import services
from storage.db import session_scope
from storage.models import ControlFlag
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    MakeDispatcher,
    messages,
    outbox,
    queue_texts,
    running,
)


def test_expired_token_pauses_dispatching_readyz_says_why_and_a_new_token_resumes(
    app: Flask,
    app_config: dict[str, str],
    client: FlaskClient,
    engine: Engine,
    fake: FakeGraph,
    make_dispatcher: MakeDispatcher,
) -> None:
    queued = queue_texts(engine, 30)
    fake.expire_token("test")
    dispatcher = make_dispatcher(concurrency=4)

    dispatcher.drain()

    refused = len(fake.snapshot())
    assert 1 <= refused <= 4  # the sends already in flight; the rest of the batch held back
    assert all(r.outcome == "error 190" for r in fake.snapshot())
    assert dispatcher.paused_reason() is not None
    assert dispatcher.drain() == 0 and len(fake.snapshot()) == refused  # paused: nothing sent
    assert all(m.status == "queued" for m in messages(engine, queued).values())
    assert all(row.claimed_by is None for row in outbox(engine))  # nothing held while paused

    ready = client.get("/readyz")
    assert ready.status_code == 200  # intake still works; sending is what stopped
    assert ready.json is not None
    assert ready.json["dispatch"].startswith("paused: access token rejected by Meta (error 190)")
    assert "WHATSAPP_ACCESS_TOKEN" in ready.json["dispatch"]
    status = app.test_cli_runner().invoke(args=["outbox", "status"])
    assert "paused: access token rejected" in status.output
    assert "pending: 30" in status.output
    assert "answers, due: 30 (oldest due" in status.output

    # The app restarted with a new token sends everything, and is ready without a pause.
    fake.add_token("fresh")
    fresh_app = create_app({**app_config, "WHATSAPP_ACCESS_TOKEN": "fresh"})
    try:
        assert fresh_app.test_client().get("/readyz").json["dispatch"] == "running"  # type: ignore[index]
        assert services(fresh_app).dispatcher().paused_reason() is None
    finally:
        services(fresh_app).engine.dispose()
    make_dispatcher(token="fresh").drain()
    assert fake.delivered() == Counter({q.marker: 1 for q in queued})
    assert outbox(engine) == []


def test_outbox_resume_lifts_the_pause(app: Flask, engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(ControlFlag(name=bot.outbound.pause.PAUSE_FLAG, value="x paused"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["outbox", "resume"]).output.strip() == "resumed"
    assert runner.invoke(args=["outbox", "resume"]).output.strip() == "was not paused"


def test_on_sqlite_one_dispatcher_sends_at_a_time_and_another_takes_over_when_it_stops(
    database_url: str, engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL any number of dispatchers send side by side")
    # The one standing by tries the lock every 50 ms rather than every second.
    first, second = make_dispatcher(), make_dispatcher(standby_seconds=0.05)
    with running(first) as one:
        queue_texts(engine, 5)
        one.poke()
        assert first.stats.wait_for(lambda s: s.sent == 5, timeout=30)
        with running(second) as two:  # stands by: the first holds the database's lock
            queue_texts(engine, 5)
            one.poke()
            two.poke()
            assert first.wait_drained(timeout=30)
            assert first.stats.sent == 10 and second.stats.sent == 0

            one.stop()
            queue_texts(engine, 5)
            two.poke()
            assert second.stats.wait_for(lambda s: s.sent == 5, timeout=30)
    assert len(fake.delivered()) == 15 and set(fake.delivered().values()) == {1}
