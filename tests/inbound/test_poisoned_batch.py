"""C26: one item of a batch that cannot be stored never holds back the rest.

PostgreSQL refuses what SQLite keeps (an over-long field, a NUL), so every test runs on the
suite's backend and on PostgreSQL. Each posts a batch mixing good items and poisoned ones, then
checks that the body is answered 200, that the good items were stored and acted on (their
replies really sent), that the poisoned ones are in the support inbox, and that a redelivery,
even to an instance whose dedupe store forgot the first, has no second effect.
"""

from __future__ import annotations

import io
import json
import logging
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
from flask import Flask
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

import bot.inbound.messages
import bot.meta.parser
from bot import create_app
from bot.dev import simulate
from bot.dev.chat import ChatSession
from bot.graph import ConsoleTransport
from bot.inbound.responder import Responder
from bot.wiring.services import services
from storage.models import (
    Consent,
    ConsentEvent,
    Contact,
    FailedPayload,
    Message,
    OutboxItem,
    PreferenceEvent,
    StatusEvent,
)

GOOD = "447700900101"
NAMED = "447700900102"
NUL_SENDER = "447700900103"
STOPPER = "447700900104"


@pytest.fixture(params=["suite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, str]) -> dict[str, str]:
    """The suite's backend, and PostgreSQL, which refuses what SQLite keeps."""
    if request.param == "postgresql":
        return {**app_config, "DATABASE_URL": request.getfixturevalue("postgres_url")}
    return app_config


@pytest.fixture
def forgetful(app_config: dict[str, str]) -> Iterator[Flask]:
    """Another instance on the same database whose dedupe store knows nothing of the first."""
    other = create_app({**app_config, "REDIS_PREFIX": f"optin-test-{uuid.uuid4().hex[:8]}:"})
    yield other
    services(other).engine.dispose()


@dataclass(frozen=True, slots=True)
class Effects:
    inbound: int
    outbound: int
    outbox: int
    ledger: int
    statuses: int
    preferences: int
    kept_for_support: int


def effects(engine: Engine) -> Effects:
    with Session(engine) as session:

        def count(model, *where) -> int:  # type: ignore[no-untyped-def]
            return session.exec(select(func.count()).select_from(model).where(*where)).one()

        return Effects(
            inbound=count(Message, Message.direction == "in"),
            outbound=count(Message, Message.direction == "out"),
            outbox=count(OutboxItem),
            ledger=count(ConsentEvent),
            statuses=count(StatusEvent),
            preferences=count(PreferenceEvent),
            kept_for_support=count(FailedPayload),
        )


def post(app: Flask, body: bytes) -> dict[str, int]:
    secret = services(app).settings.app_secret
    response = app.test_client().post(
        "/webhook", data=body, headers={"X-Hub-Signature-256": simulate.sign(body, secret)}
    )
    assert response.status_code == 200, response.get_data(as_text=True)
    return response.json


def sent_to(app: Flask) -> dict[str, list[dict]]:
    """Send what the outbox holds; the payloads sent, by recipient."""
    transport = ConsoleTransport(stream=io.StringIO())
    services(app).dispatcher(transport=transport, concurrency=1).drain()
    sent: dict[str, list[dict]] = {}
    for _, payload, _ in transport.sent:
        if payload.get("to"):
            sent.setdefault(payload["to"], []).append(payload)
    return sent


def problems(engine: Engine) -> list[str]:
    with Session(engine) as session:
        return sorted(session.exec(select(FailedPayload.problem)))


def consents_of(engine: Engine, wa_id: str) -> dict[str, bool]:
    with Session(engine) as session:
        rows = session.exec(
            select(Consent)
            .join(Contact, col(Contact.id) == Consent.contact_id)
            # The join names the contact; the consent rows are what is read.
            .where(Contact.wa_id == wa_id)
        )
        return {row.category: row.granted for row in rows}


def opted_in(app: Flask, wa_id: str) -> None:
    customer = ChatSession(app, wa_id=wa_id)
    customer.say("hello")
    customer.press(1)  # yes to every category
    assert set(consents_of(services(app).engine, wa_id).values()) == {True}


def test_c26_a_good_message_a_300_character_name_a_nul_and_a_stop(app, engine, forgetful):
    opted_in(app, STOPPER)
    sent_to(app)
    batch = simulate.batch_body(
        simulate.text_body(wa_id=GOOD, text="hello"),
        simulate.text_body(wa_id=NAMED, text="hello", name="N" * 300),
        simulate.text_body(wa_id=NUL_SENDER, text="hi\x00there"),
        simulate.text_body(wa_id=STOPPER, text="STOP"),
    )

    report = post(app, batch)

    # The named person's message is stored without the name; the name and the NUL are kept.
    assert report["messages"] == 3 and report["malformed"] == 2
    sent = sent_to(app)
    assert [p["type"] for p in sent[GOOD]] == ["interactive"]  # the consent prompt
    assert [p["type"] for p in sent[NAMED]] == ["interactive"]
    assert NUL_SENDER not in sent
    assert [p["type"] for p in sent[STOPPER]] == ["text"]  # the STOP's one confirmation
    assert consents_of(engine, STOPPER) == {"orders": False, "offers": False}
    with Session(engine) as session:
        assert session.exec(select(Contact.name).where(Contact.wa_id == NAMED)).one() is None
        assert session.exec(select(Contact).where(Contact.wa_id == NUL_SENDER)).first() is None
    kept = problems(engine)
    assert len(kept) == 2
    assert any("'profile.name' is 300 characters" in p for p in kept)
    assert any("holds a NUL character at text.body" in p for p in kept)

    after = effects(engine)
    again = post(app, batch)
    assert again["messages"] == 0 and again["duplicates"] == 3 and again["malformed"] == 2
    post(forgetful, batch)
    assert effects(engine) == after
    assert sent_to(app) == {}


def test_c26_every_kind_of_poison_beside_every_kind_of_good_item(app, engine, forgetful):
    opted_in(app, STOPPER)
    prompt_wamid = next(
        m.wamid
        for m in _outbound(engine)
        if m.wamid is not None  # sent, so Meta's statuses can name it
    )
    good_message = simulate.text_body(wa_id=GOOD, text="hello")
    poisoned = [
        _spliced(simulate.text_body(wa_id="447700900201", text="hi"), b"1e999"),
        _spliced(simulate.text_body(wa_id="447700900202", text="hi"), b"NaN"),
        _spliced(simulate.text_body(wa_id="447700900203", text="hi"), b"9" * 5000),
        simulate.text_body(wa_id="447700900204", text="hi", timestamp="9" * 5000),
        simulate.text_body(wa_id="447700900205", text="hi", wamid="w" * 300),
        simulate.text_body(wa_id="447700900206", text="hi", phone_number_id="1" * 70),
        simulate.status_body(
            wamid=prompt_wamid, status="failed", recipient_id=STOPPER, errors=[2**70]
        ),
        simulate.preference_body(wa_id="447700900207", value="stop\x00"),
        _other_change({"note": "a\x00b"}),
    ]
    good = [
        good_message,
        simulate.status_body(wamid=prompt_wamid, status="read", recipient_id=STOPPER),
        simulate.preference_body(wa_id=STOPPER, value="stop"),  # Meta's marketing opt-out
        _other_change({"note": "kept"}),
    ]
    batch = _batch(*poisoned[:5], *good, *poisoned[5:])

    report = post(app, batch)

    assert report == {
        "messages": 1,
        "duplicates": 0,
        "statuses": 1,
        "preferences": 1,
        "others": 1,
        "malformed": len(poisoned),
    }
    assert sent_to(app).keys() == {GOOD}
    assert consents_of(engine, STOPPER) == {"orders": True, "offers": False}  # marketing only
    with Session(engine) as session:
        status = session.exec(select(Message.status).where(Message.wamid == prompt_wamid)).one()
    assert status == "read"
    assert len(problems(engine)) == len(poisoned)

    after = effects(engine)
    post(app, batch)
    post(forgetful, batch)
    assert effects(engine) == after


def test_c26_an_item_the_database_still_refuses_is_kept_and_the_batch_goes_on(
    app, engine, monkeypatch, caplog
):
    """Were a check missing, or the dialogue to fail on one message, only that one is lost."""
    real = Responder.__call__

    def fails_on_one(self, session, contact, event, **options):  # type: ignore[no-untyped-def]
        if event.wamid == "wamid.BROKEN":
            raise RuntimeError("the dialogue failed on this one")
        return real(self, session, contact, event, **options)

    monkeypatch.setattr(Responder, "__call__", fails_on_one)
    batch = simulate.batch_body(
        simulate.text_body(wa_id=GOOD, text="hello"),
        simulate.text_body(wa_id=NAMED, text="hello", wamid="wamid.BROKEN"),
        simulate.text_body(wa_id=STOPPER, text="hello"),
    )
    with caplog.at_level(logging.ERROR):
        report = post(app, batch)

    assert report["messages"] == 2 and report["malformed"] == 1
    assert sent_to(app).keys() == {GOOD, STOPPER}
    assert problems(engine) == ["message wamid.BROKEN: could not be stored (RuntimeError)"]
    with Session(engine) as session:  # nothing of it stayed: its savepoint was rolled back
        assert session.exec(select(Contact).where(Contact.wa_id == NAMED)).first() is None
    assert "message wamid.BROKEN could not be stored; kept for support" in caplog.text


@pytest.mark.postgres
def test_c26_a_column_postgresql_refuses_costs_only_its_item(postgres_url, app_config, monkeypatch):
    monkeypatch.setattr(bot.meta.parser, "check_message", lambda message: None)
    app = create_app({**app_config, "DATABASE_URL": postgres_url})
    engine = services(app).engine
    try:
        batch = simulate.batch_body(
            simulate.text_body(wa_id=GOOD, text="hello"),
            simulate.text_body(wa_id=NAMED, text="hello", wamid="w" * 300),
            simulate.text_body(wa_id=NUL_SENDER, text="a\x00b"),
            simulate.text_body(wa_id=STOPPER, text="hello"),
        )
        report = post(app, batch)
        assert report["messages"] == 2 and report["malformed"] == 2
        assert sent_to(app).keys() == {GOOD, STOPPER}
        assert [p.split(": ", 1)[1] for p in problems(engine)] == [
            "could not be stored (DataError)"
        ] * 2
    finally:
        engine.dispose()


def test_a_unique_key_broken_by_a_concurrent_writer_is_tried_once_more(app, engine, monkeypatch):
    # A known sender: a new one's message is held for the body's write (test_new_people_race).
    assert post(app, simulate.text_body(wa_id=GOOD, text="hi", wamid="wamid.EARLIER"))["messages"]
    real_many = bot.inbound.messages.insert_inbound_many
    real_one = bot.inbound.messages.insert_inbound
    calls: list[str] = []

    def races_once(session, rows):  # type: ignore[no-untyped-def]
        calls.extend(row["wamid"] for row in rows)
        if len(calls) == 1:  # the body's messages go in together first
            raise IntegrityError("INSERT", {}, Exception("a concurrent writer won"))
        return real_many(session, rows)

    def recorded(session, **values):  # type: ignore[no-untyped-def]
        calls.append(values["wamid"])  # then each apart
        return real_one(session, **values)

    monkeypatch.setattr(bot.inbound.messages, "insert_inbound_many", races_once)
    monkeypatch.setattr(bot.inbound.messages, "insert_inbound", recorded)
    report = post(app, simulate.text_body(wa_id=GOOD, text="hello", wamid="wamid.RACE"))
    assert report["messages"] == 1 and report["malformed"] == 0
    assert calls == ["wamid.RACE", "wamid.RACE"]
    assert sent_to(app).keys() == {GOOD}


def _outbound(engine: Engine) -> list[Message]:
    with Session(engine) as session:
        return list(session.exec(select(Message).where(Message.direction == "out")))


def _batch(*bodies: bytes) -> bytes:
    """simulate.batch_body at the byte level: these bodies hold what json.loads cannot read."""
    head = b'{"object":"whatsapp_business_account","entry":['
    entries = []
    for body in bodies:
        assert body.startswith(head) and body.endswith(b"]}")
        entries.append(body[len(head) : -2])
    return head + b",".join(entries) + b"]}"


def _spliced(body: bytes, literal: bytes) -> bytes:
    """The body with a field holding a literal json.dumps would never write."""
    document = json.loads(body)
    document["entry"][0]["changes"][0]["value"]["messages"][0]["extra"] = "SPLICE"
    raw = simulate._dumps(document)
    return raw.replace(b'"SPLICE"', literal)


def _other_change(value: dict) -> bytes:
    metadata = {"phone_number_id": simulate.DEFAULT_PHONE_NUMBER_ID}
    return simulate._dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [
                {
                    "id": simulate.DEFAULT_WABA_ID,
                    "changes": [{"field": "account_update", "value": {**value, **metadata}}],
                }
            ],
        }
    )
