"""C20 and C25 where the fast dedupe path cannot help.

Meta's retry may reach another instance than the first delivery, after Redis forgot (a restart
without persistence, an eviction) or while Redis is down. Only the database's unique keys and
the erasure's record stand between that retry and a second effect, so each test here delivers
the first time to one app and the retry to a second app on the same database whose dedupe store
remembers nothing, and counts effects: ledger rows, replies queued and outbox rows.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import pytest
from flask import Flask
from sqlalchemy.engine import Engine
from sqlmodel import Session, func, select

from bot import create_app
from bot.dev import simulate
from bot.dev.chat import ChatSession
from bot.wiring.services import services
from storage.kv import RedisStore
from storage.models import ConsentEvent, Contact, Message, OutboxItem, Suppression
from tests.conftest import API_TOKEN

WA_ID = "447700900555"
# Nothing listens on port 1: every Redis call fails at once, as when Redis is down.
UNREACHABLE_REDIS = "redis://127.0.0.1:1/0"


@dataclass(frozen=True, slots=True)
class Effects:
    ledger_rows: int
    replies: int
    outbox_rows: int
    contacts: int


def effects(engine: Engine) -> Effects:
    with Session(engine) as session:

        def count(model, *where) -> int:  # type: ignore[no-untyped-def]
            return session.exec(select(func.count()).select_from(model).where(*where)).one()

        return Effects(
            ledger_rows=count(ConsentEvent),
            replies=count(Message, Message.direction == "out"),
            outbox_rows=count(OutboxItem),
            contacts=count(Contact),
        )


def forget_fast_path(app: Flask) -> None:
    """What a Redis restart without persistence does to this deployment's keys."""
    store = services(app).store
    if isinstance(store, RedisStore):
        for key in store.connection.scan_iter(match=store.prefix + "*"):
            store.connection.delete(key)


@pytest.fixture(params=["store_forgot", "store_down"])
def second_instance(request, app: Flask, app_config: dict[str, str]) -> Iterator[Flask]:
    """Another process on the same database whose dedupe store knows nothing of the first."""
    config = dict(app_config)
    if request.param == "store_down":
        config["REDIS_URL"] = UNREACHABLE_REDIS
    else:
        # Embedded run: a new process has a new, empty in-process store. With Redis: flushed.
        forget_fast_path(app)
    other = create_app(config)
    yield other
    services(other).engine.dispose()


def post(app: Flask, body: bytes) -> dict[str, int]:
    secret = services(app).settings.app_secret
    response = app.test_client().post(
        "/webhook", data=body, headers={"X-Hub-Signature-256": simulate.sign(body, secret)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def test_c20_a_tap_redelivered_to_another_instance_has_one_effect(app, second_instance, engine):
    customer = ChatSession(app, wa_id=WA_ID)
    customer.say("hello")
    tap = simulate.button_reply_body(
        wa_id=WA_ID,
        reply_id="optin:yes",
        title="Yes, all",
        context_wamid=customer.choices[0].context_wamid,
        wamid="wamid.TAP-ONCE",
    )
    post(app, tap)
    after_first = effects(engine)
    assert after_first.ledger_rows == 2  # one grant per category

    report = post(second_instance, tap)

    assert report["messages"] == 0 and report["duplicates"] == 1
    assert effects(engine) == after_first


def test_c20_a_stop_redelivered_to_another_instance_is_confirmed_once(app, second_instance, engine):
    customer = ChatSession(app, wa_id=WA_ID)
    customer.say("hello")
    customer.press(1)
    stop = simulate.text_body(wa_id=WA_ID, text="STOP", wamid="wamid.STOP-ONCE")
    post(app, stop)
    after_first = effects(engine)

    post(second_instance, stop)
    post(second_instance, stop)

    assert effects(engine) == after_first
    with Session(engine) as session:
        withdrawals = session.exec(
            select(ConsentEvent.category).where(ConsentEvent.granted.is_(False))  # type: ignore[attr-defined]
        ).all()
        confirmations = session.exec(
            select(func.count()).where(Message.direction == "out", Message.purpose == "stop")
        ).one()
    assert sorted(withdrawals) == ["offers", "orders"]
    assert confirmations == 1


def test_c20_a_batch_redelivered_to_another_instance_has_one_effect(app, second_instance, engine):
    """Meta redelivers the whole body: every message in it must be recognised."""
    batch = simulate.batch_body(
        simulate.text_body(wa_id=WA_ID, text="hello", wamid="wamid.BATCH-1"),
        simulate.text_body(wa_id="447700900556", text="مرحبا", wamid="wamid.BATCH-2"),
    )
    post(app, batch)
    after_first = effects(engine)
    assert after_first.replies == 2  # a prompt to each

    report = post(second_instance, batch)

    assert report["messages"] == 0 and report["duplicates"] == 2
    assert effects(engine) == after_first


def erase(app: Flask, wa_id: str) -> None:
    response = app.test_client().delete(
        f"/api/v1/contacts/{wa_id}", headers={"Authorization": f"Bearer {API_TOKEN}"}
    )
    assert response.status_code == 204


def suppressed(engine: Engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(Suppression)).one()


def test_c25_messages_from_before_an_erasure_replayed_bring_nothing_back(
    app, second_instance, engine
):
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(minutes=5)
    hello = simulate.text_body(wa_id=WA_ID, text="hello", timestamp=before)
    yes = simulate.text_body(wa_id=WA_ID, text="yes", timestamp=before + timedelta(seconds=20))
    post(app, hello)
    post(app, yes)
    assert effects(engine).ledger_rows == 2
    erase(app, WA_ID)
    assert suppressed(engine) == 1
    erased = effects(engine)

    for body in (hello, yes, hello, yes):
        post(second_instance, body)

    assert effects(engine) == erased
    assert erased.contacts == 0 and erased.ledger_rows == 0
    assert suppressed(engine) == 1


def test_c25_an_erased_person_who_writes_again_gets_the_prompt_and_only_a_new_yes_lifts_it(
    app, second_instance, engine
):
    customer = ChatSession(app, wa_id=WA_ID)
    customer.say("hello")
    customer.press(1)
    erase(app, WA_ID)

    again = ChatSession(second_instance, wa_id=WA_ID)
    replies = again.say("hello again")

    assert [b["reply"]["id"] for b in replies[0].payload["interactive"]["action"]["buttons"]] == [
        "optin:yes",
        "optin:choose",
        "optin:no",
    ]
    assert effects(engine).ledger_rows == 0
    assert suppressed(engine) == 1
    again.press(1)
    assert effects(engine).ledger_rows == 2
    assert suppressed(engine) == 0
