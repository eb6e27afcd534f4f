"""The API's calls in the audit log (C30): by token fingerprint and name, and no read leaves
unrecorded."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import OperationalError
from sqlmodel import Session, select

import bot.wiring.audit
from bot.wiring.logmask import fingerprint
from storage.models import AuditEvent
from tests.api.conftest import WA_ID, consent_body, grant

NAMED = "crm-token-0123456789"


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    return {**app_config, "API_TOKENS": f"{app_config['API_TOKENS']},crm:read+consent:{NAMED}"}


def events(engine) -> list[AuditEvent]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEvent).order_by(AuditEvent.id)).all())


def test_c30_a_named_token_is_recorded_by_fingerprint_and_name(client, engine) -> None:
    headers = {"Authorization": f"Bearer {NAMED}"}
    assert client.post("/api/v1/consents", json=consent_body(), headers=headers).status_code == 201
    assert client.delete(f"/api/v1/contacts/{WA_ID}", headers=headers).status_code == 403
    first, refused = events(engine)
    assert (first.actor, first.action, first.subject) == (
        fingerprint(NAMED),
        "api_call",
        "•••••••1234",
    )
    assert first.detail == {
        "method": "POST",
        "route": "/api/v1/consents",
        "status": 201,
        "token": "crm",
    }
    assert (refused.action, refused.detail["status"]) == ("api_call", 403)  # refused, still known


def test_c30_a_read_that_cannot_be_recorded_is_withheld(api, engine, monkeypatch) -> None:
    grant(api)

    def unavailable(*_args, **_kwargs):
        raise OperationalError("INSERT", {}, Exception("database is away"))

    monkeypatch.setattr(bot.wiring.audit, "record_event", unavailable)
    read = api.get(f"/contacts/{WA_ID}")
    assert read.status_code == 503
    assert read.json == {"error": "audit_unavailable", "message": "try again shortly"}
    # A change already made is answered as made, so the caller does not make it twice.
    assert api.post("/consents", consent_body(categories=["orders"])).status_code == 201
