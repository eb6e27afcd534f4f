"""Console fixtures: an app with an admin and a support account, signed-in clients, a real
conversation."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator
from datetime import datetime, timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy import update
from sqlalchemy.engine import Engine
from sqlmodel import col, select
from werkzeug.security import generate_password_hash

from bot import create_app
from bot.dev.chat import ChatSession
from bot.wiring.services import services
from flows.policy import META_OPT_OUT_TEXT, META_REFUSAL_OPT_OUT_TEXT
from flows.versioning import text_version
from storage import consent_webhooks
from storage.consents import append_decision
from storage.contacts import find_contact
from storage.db import session_scope
from storage.models import ConsentWebhook, Contact, Message, OutboxItem
from storage.outbox import PRIORITY_BUSINESS
from storage.types import utcnow

STAFF = "alice"  # an admin: may do everything the console offers
SUPPORT = "sam"  # support: reads and searches
PASSWORD = "correct horse battery"
CUSTOMER = "971501234567"
CUSTOMER_NAME = "Layla Haddad"
ARABIC_TEXT = "مرحبا، أريد معرفة موعد التوصيل"
CSRF_FIELD = re.compile(r'name="csrf_token" value="([^"]+)"')


@functools.cache
def password_hash() -> str:
    """One hash per run: hashing is slow on purpose."""
    return generate_password_hash(PASSWORD)


def staff_entry() -> str:
    return f"{STAFF}:admin:{password_hash()},{SUPPORT}:{password_hash()}"


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    return {**app_config, "CONSOLE_USERS": staff_entry()}


def csrf_from(client: FlaskClient, path: str = "/console/login") -> str:
    page = client.get(path).get_data(as_text=True)
    found = CSRF_FIELD.search(page)
    assert found, page
    return found.group(1)


def sign_in(client: FlaskClient, *, username: str = STAFF, password: str = PASSWORD):
    return client.post(
        "/console/login",
        data={"username": username, "password": password, "csrf_token": csrf_from(client)},
    )


@pytest.fixture
def staff_client(client: FlaskClient) -> FlaskClient:
    response = sign_in(client)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


@pytest.fixture
def support_client(app: Flask) -> FlaskClient:
    client = app.test_client()
    response = sign_in(client, username=SUPPORT)
    assert response.status_code == 302, response.get_data(as_text=True)
    return client


def converse(app: Flask, *, wa_id: str = CUSTOMER, name: str = CUSTOMER_NAME) -> ChatSession:
    """Opt in to everything, STOP, then write in Arabic: grants, withdrawals and RTL text."""
    chat = ChatSession(app, wa_id=wa_id, name=name)
    chat.say("hello")
    chat.say("1")  # Yes, all
    chat.say("STOP")
    chat.say(ARABIC_TEXT)
    return chat


@pytest.fixture
def conversation(app: Flask) -> ChatSession:
    return converse(app)


@pytest.fixture
def make_console(app_config: dict[str, str]) -> Iterator[Callable[..., Flask]]:
    """Another app on the same database, with some settings changed."""
    apps: list[Flask] = []

    def make(**changes: str) -> Flask:
        made = create_app({**app_config, **changes})
        apps.append(made)
        return made

    yield make
    for made in apps:
        services(made).engine.dispose()


def decide(engine: Engine, wa_id: str, *decisions: tuple[str, bool, str, str], days_ago: int = 0):
    """A contact and its ledger rows: (category, granted, source, text) each."""
    at = utcnow() - timedelta(days=days_ago)
    with session_scope(engine) as session:
        contact = Contact(wa_id=wa_id, name="Someone")
        session.add(contact)
        session.flush()
        assert contact.id is not None
        for category, granted, source, words in decisions:
            append_decision(
                session,
                contact_id=contact.id,
                category=category,
                granted=granted,
                source=source,
                occurred_at=at,
                text=words,
                text_version=text_version(words),
                evidence={},
            )


@pytest.fixture
def activity(app: Flask, engine: Engine) -> None:
    """A month of the dashboard's material: opt-ins, every kind of opt-out, a decline, failed
    sends and a business backlog."""
    converse(app)  # opts in to orders and offers, then STOP: two opt-ins, two opt-outs
    prompt = "Would you like offers?"
    decide(
        engine,
        "15550000001",
        ("offers", True, "whatsapp", prompt),
        ("offers", False, "whatsapp", "please no more of these"),
    )
    decide(
        engine,
        "15550000002",
        ("offers", True, "web", "Sign me up"),
        ("offers", False, "meta", META_OPT_OUT_TEXT),
    )
    decide(
        engine,
        "15550000003",
        ("offers", True, "web", "Sign me up"),
        ("offers", False, "meta", META_REFUSAL_OPT_OUT_TEXT),
    )
    decide(engine, "15550000004", ("orders", True, "web", "Yes"), ("orders", False, "web", "No"))
    decide(engine, "15550000005", ("orders", False, "whatsapp", prompt))  # a decline
    decide(engine, "15550000006", ("orders", True, "web", "Yes"), days_ago=40)  # too old
    now = utcnow()
    with session_scope(engine) as session:
        contact = find_contact(session, key=CUSTOMER)
        assert contact is not None and contact.id is not None
        for code, title in (
            (131050, "User opted out of marketing"),
            (131026, "Undeliverable"),
            (131050, "User opted out of marketing"),
        ):
            session.add(
                Message(
                    contact_id=contact.id,
                    direction="out",
                    type="text",
                    status="failed",
                    status_at=now,
                    meta_timestamp=now,
                    error_code=code,
                    error_title=title,
                )
            )
        for due in (now - timedelta(minutes=5), now, now + timedelta(hours=1)):
            session.add(
                OutboxItem(phone_number_id="1", payload={}, priority=PRIORITY_BUSINESS, due_at=due)
            )


@pytest.fixture
def webhook_backlog(engine: Engine) -> datetime:
    """Six consent changes queued for the business's webhook (C29) through the ledger, then in
    every state: two new and due, one new being sent, one failing and due again, two failing
    and waiting for their retry. The oldest was queued two hours before the time returned."""
    consent_webhooks.enable(engine)  # as CONSENT_WEBHOOK_URL does
    decide(engine, "15550000021", ("offers", True, "web", "Yes"), ("orders", True, "web", "Yes"))
    decide(engine, "15550000022", ("offers", True, "web", "Yes"))
    decide(engine, "15550000023", ("offers", True, "web", "Yes"), ("offers", False, "web", "No"))
    decide(engine, "15550000024", ("orders", True, "web", "Yes"))
    engine.update_execution_options(**{consent_webhooks.OPTION: False})  # the rest queue none
    at = utcnow()
    later, day = at + timedelta(hours=1), timedelta(days=1)  # far off: a slow test stays exact
    with session_scope(engine) as session:
        ids = list(session.exec(select(ConsentWebhook.id).order_by(col(ConsentWebhook.id))))
        assert len(ids) == 6
        first, _, sending, due_again, _, last = ids
        for _attempt in range(2):
            consent_webhooks.retry_later(session, first, due_at=at + day, error="HTTP 500")
        consent_webhooks.retry_later(session, due_again, due_at=at - day, error="ConnectTimeout")
        consent_webhooks.retry_later(session, last, due_at=at + day, error="HTTP 500")
        for row_id, values in (
            (first, {"created_at": at - timedelta(hours=2)}),
            (sending, {"claimed_until": later}),
        ):
            session.execute(
                update(ConsentWebhook).where(col(ConsentWebhook.id) == row_id).values(**values)
            )
    return at
