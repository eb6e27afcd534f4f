"""Fixtures building on each other: database → app → client → meta (signed webhook posts).

The suite runs on the embedded defaults (SQLite, in-process store), or on PostgreSQL and Redis
when TEST_DATABASE_URL and TEST_REDIS_URL are set (CI runs both).
"""

from __future__ import annotations

import json
import os
import shutil
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import SQLModel

from bot import create_app
from bot.inbound.signature import expected_signature
from bot.wiring.services import services
from storage import migrate
from storage.db import make_engine
from tests.services import postgres_url_or_skip, redis_url_or_skip

ROOT = Path(__file__).resolve().parents[1]
# Webhook bodies recorded in Meta's shapes (a copy of the team's shared fixtures, kept in the
# repository so a fresh clone tests on its own). Signatures are computed over these exact bytes.
META_FIXTURES = ROOT / "tests" / "fixtures" / "meta"
APP_SECRET = "test-app-secret"
VERIFY_TOKEN = "test-verify-token"
API_TOKEN = "test-api-token"

# Hypothesis fails an example that takes longer than 200 ms: a wall-clock assertion, which a
# busy machine breaks with no defect (a dialogue step took 274 ms under load). Examples are
# judged by what they return; how long they take is the benches' to say.
hypothesis_settings.register_profile("suite", deadline=None)
hypothesis_settings.load_profile("suite")


def pytest_configure(config: pytest.Config) -> None:
    # SLEEP_METER: imported by tests/__init__.py before the application; its report from here.
    meter = sys.modules.get("tests.sleep_meter")
    if meter is not None and not config.pluginmanager.is_registered(meter):
        config.pluginmanager.register(meter, "sleep_meter")


def fixture_bytes(name: str) -> bytes:
    return (META_FIXTURES / name).read_bytes()


def _reset_postgres(url: str) -> None:
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        connection.execute(text("CREATE SCHEMA public"))
    engine.dispose()
    migrate.upgrade(url)


def _truncate(engine: Engine) -> None:
    tables = ", ".join(f'"{t.name}"' for t in SQLModel.metadata.sorted_tables)
    with engine.begin() as connection:
        connection.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))


@pytest.fixture(scope="session")
def database_template(tmp_path_factory: pytest.TempPathFactory) -> str:
    """The schema, built once per run by the migrations (never by create_all)."""
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        if url.startswith("postgres"):
            postgres_url_or_skip()
        _reset_postgres(url)
        return url
    path = tmp_path_factory.mktemp("template") / "template.db"
    migrate.upgrade(f"sqlite:///{path}")
    return str(path)


@pytest.fixture
def database_url(database_template: str, tmp_path: Path) -> Iterator[str]:
    if "://" in database_template:
        engine = make_engine(database_template)
        _truncate(engine)
        engine.dispose()
        yield database_template
        return
    path = tmp_path / "optin.db"
    shutil.copyfile(database_template, path)
    yield f"sqlite:///{path}"


@pytest.fixture
def redis_url() -> str | None:
    if os.environ.get("TEST_REDIS_URL"):
        return redis_url_or_skip()
    return None


@pytest.fixture
def app_config(database_url: str, redis_url: str | None) -> dict[str, str]:
    config = {
        "APP_ENV": "production",
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "SECRET_KEY": "test-secret-key-of-32-characters-or-more",
        "DATABASE_URL": database_url,
        "OPTIN_CONFIG": str(ROOT / "optin.toml"),
        "API_TOKENS": API_TOKEN,
        "RUN_DISPATCHER": "0",
        "REDIS_PREFIX": f"optin-test-{uuid.uuid4().hex[:8]}:",
    }
    if redis_url:
        config["REDIS_URL"] = redis_url
    return config


@pytest.fixture
def app(app_config: dict[str, str]) -> Iterator[Flask]:
    app = create_app(app_config)
    yield app
    services(app).engine.dispose()


@pytest.fixture
def client(app: Flask) -> FlaskClient:
    return app.test_client()


class MetaWebhook:
    """Posts bodies to /webhook signed as Meta signs them, over the exact bytes."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client

    def post(self, body: bytes, *, secret: str = APP_SECRET, signature: str | None = None):
        header = signature if signature is not None else expected_signature(body, secret)
        return self.client.post(
            "/webhook",
            data=body,
            headers={"X-Hub-Signature-256": header, "Content-Type": "application/json"},
        )

    def post_fixture(self, name: str):
        return self.post(fixture_bytes(name))

    def post_json(self, payload: dict):
        return self.post(json.dumps(payload).encode())


@pytest.fixture
def meta(client: FlaskClient) -> MetaWebhook:
    return MetaWebhook(client)


class Api:
    """The business API, as a business calls it."""

    def __init__(self, client: FlaskClient) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {API_TOKEN}"}

    def get(self, path: str):
        return self.client.get(f"/api/v1{path}", headers=self.headers)

    def post(self, path: str, payload: dict, headers: dict | None = None):
        return self.client.post(
            f"/api/v1{path}", json=payload, headers={**self.headers, **(headers or {})}
        )

    def delete(self, path: str):
        return self.client.delete(f"/api/v1{path}", headers=self.headers)


@pytest.fixture
def api(client: FlaskClient) -> Api:
    return Api(client)


@pytest.fixture
def engine(app: Flask) -> Engine:
    return services(app).engine


@pytest.fixture(scope="session")
def postgres_schema(database_template: str) -> str:
    """A PostgreSQL database at the newest schema, whichever run this is."""
    url = postgres_url_or_skip()
    if database_template != url:
        _reset_postgres(url)
    return url


@pytest.fixture
def postgres_url(postgres_schema: str) -> str:
    engine = make_engine(postgres_schema)
    _truncate(engine)
    engine.dispose()
    return postgres_schema


@pytest.fixture
def live_server_factory():
    """Serve an app on a loopback port in a thread, as gunicorn's threads would."""
    from werkzeug.serving import make_server

    servers = []

    def start(app: Flask) -> str:
        server = make_server("127.0.0.1", 0, app, threaded=True)
        import threading

        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return f"http://127.0.0.1:{server.server_port}"

    yield start
    for server in servers:
        server.shutdown()
