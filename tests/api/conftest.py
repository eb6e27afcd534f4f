"""The business API as a business uses it: a sender configured, helpers for common set-ups."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from sqlalchemy import func
from sqlalchemy.engine import Engine
from sqlmodel import Session, SQLModel, select

from bot import create_app
from bot.dev import simulate
from bot.wiring.services import services
from tests.conftest import ROOT, Api

PHONE_NUMBER_ID = simulate.DEFAULT_PHONE_NUMBER_ID
WA_ID = "16505551234"
OTHER_WA_ID = "971501234567"
CONSENT_TEXT = "Yes, Nimbus Bakery may send me offers on WhatsApp. Reply STOP to stop."


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    return {**app_config, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID}


@pytest.fixture
def make_app(app_config: dict[str, str]) -> Iterator[Any]:
    """Another app on the same database, with some settings changed (None removes one)."""
    apps: list[Flask] = []

    def make(**changes: str | None) -> Flask:
        config = {k: v for k, v in app_config.items() if k not in changes}
        config |= {k: v for k, v in changes.items() if v is not None}
        made = create_app(config)
        apps.append(made)
        return made

    yield make
    for made in apps:
        services(made).engine.dispose()


@pytest.fixture
def double_opt_in_config(tmp_path: Path) -> str:
    path = tmp_path / "optin.toml"
    text = (ROOT / "optin.toml").read_text(encoding="utf-8")
    head, _, _ = text.partition("[double_opt_in]")
    path.write_text(
        head
        + '[double_opt_in]\nenabled = true\ntemplate = "optin_confirmation"\nlanguage = "en"\n',
        encoding="utf-8",
    )
    return str(path)


def hours_ago(hours: float) -> datetime:
    return datetime.now(UTC) - timedelta(hours=hours)


def consent_body(wa_id: str = WA_ID, **changes: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "wa_id": wa_id,
        "categories": ["offers"],
        "granted": True,
        "source": "web",
        "collected_at": hours_ago(1).isoformat(),
        "text": CONSENT_TEXT,
        "evidence": {"form": "signup-2025", "ip": "203.0.113.7"},
    }
    body.update(changes)
    return body


def grant(api: Api, wa_id: str = WA_ID, **changes: Any) -> dict[str, Any]:
    response = api.post("/consents", consent_body(wa_id, **changes))
    assert response.status_code == 201, response.json
    return response.json


def say(meta: Any, wa_id: str = WA_ID, *, at: datetime | None = None, text: str = "hi") -> None:
    """The contact writes to the business (opens the 24-hour window at `at`)."""
    response = meta.post(simulate.text_body(wa_id=wa_id, text=text, timestamp=at))
    assert response.status_code == 200, response.data


def count(engine: Engine, model: type[SQLModel], *where: Any) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model).where(*where)).one()
