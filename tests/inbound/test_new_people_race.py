"""A new customer's contact row is written with the rest of their first message's rows, under an
id the body's lookup allocated (PostgreSQL). Until then nobody else sees it, so another worker
may create the same person meanwhile: the body's write then fails on the person's unique number,
and the body is stored again, apart, on the contact the other worker created."""

from __future__ import annotations

import json
import logging
from collections.abc import Iterator

import pytest
from flask import Flask
from sqlalchemy import insert
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

import bot.inbound.messages
from bot import create_app
from bot.dev import simulate
from bot.wiring.services import services
from storage.models import Contact, Message
from storage.types import utcnow
from tests.conftest import MetaWebhook, fixture_bytes

NUMBER = "447700900301"


@pytest.fixture
def app(app_config: dict[str, str], postgres_url: str) -> Iterator[Flask]:
    """On PostgreSQL whichever run this is: SQLite writes one transaction at a time, so no other
    worker can create anyone while a body is being stored."""
    app = create_app({**app_config, "DATABASE_URL": postgres_url})
    yield app
    services(app).engine.dispose()


def _post(app: Flask, body: bytes) -> dict[str, int]:
    answer = MetaWebhook(app.test_client()).post(body)
    assert answer.status_code == 200, answer.get_data(as_text=True)
    return answer.json


def test_c20_a_new_person_another_worker_created_meanwhile_gets_the_message(
    app: Flask, engine: Engine, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    real_hold = bot.inbound.messages.hold_inbound
    theirs: list[int] = []

    def another_worker_first(session, row):  # type: ignore[no-untyped-def]
        if not theirs:  # the body's contact row is held, not written: another worker commits
            with engine.begin() as connection:
                created = connection.execute(
                    insert(Contact).returning(Contact.id),  # type: ignore[arg-type]
                    [{"wa_id": NUMBER, "created_at": utcnow()}],
                )
                theirs.append(created.scalar_one())
        return real_hold(session, row)

    monkeypatch.setattr(bot.inbound.messages, "hold_inbound", another_worker_first)
    with caplog.at_level(logging.WARNING, logger="bot.inbound.ingest"):
        report = _post(app, simulate.text_body(wa_id=NUMBER, text="hello", wamid="wamid.NEW"))

    assert theirs, "the body never held a new contact's row"
    assert report["messages"] == 1 and report["malformed"] == 0 and report["duplicates"] == 0
    assert "messages refused together (IntegrityError)" in caplog.text
    with Session(engine) as session:
        contacts = session.exec(select(Contact).where(Contact.wa_id == NUMBER)).all()
        assert [c.id for c in contacts] == theirs  # one person, the other worker's contact
        log = session.exec(select(Message).where(Message.contact_id == theirs[0])).all()
        assert {(m.direction, m.wamid) for m in log if m.direction == "in"} == {("in", "wamid.NEW")}
        assert [m for m in log if m.direction == "out"], "the person was not answered"


def _with_username(body: bytes, username: str) -> bytes:
    document = json.loads(body)
    document["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["username"] = username
    return json.dumps(document).encode()


def test_c27_a_new_person_met_twice_in_one_body_by_username_is_one_contact(
    app: Flask, engine: Engine
) -> None:
    """A new person's user id with their username, then a number with the same username and no
    user id to contradict it, in one body: the second finds the contact the first created by
    the username (storage.identity.weak_match), which reads the table, so that contact is
    written at once rather than held for the body's write."""
    first = json.loads(fixture_bytes("username_without_wa_id.json"))  # user id and username
    username = first["entry"][0]["changes"][0]["value"]["contacts"][0]["profile"]["username"]
    body = simulate.batch_body(
        json.dumps(first).encode(),
        _with_username(simulate.text_body(wa_id="447700900302", text="hi"), username),
    )
    assert _post(app, body)["messages"] == 2
    with Session(engine) as session:
        contacts = session.exec(select(Contact).where(Contact.username == username)).all()
        assert len(contacts) == 1, [(c.id, c.wa_id, c.user_id) for c in contacts]
        assert (contacts[0].wa_id, contacts[0].user_id) == (
            "447700900302",
            first["entry"][0]["changes"][0]["value"]["contacts"][0]["user_id"],
        )
