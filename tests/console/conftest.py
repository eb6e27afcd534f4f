"""Console fixtures: an app with an admin and a support account, signed-in clients, a real
conversation."""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator

import pytest
from flask import Flask
from flask.testing import FlaskClient
from werkzeug.security import generate_password_hash

from bot import create_app
from bot.dev.chat import ChatSession
from bot.wiring.services import services

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
