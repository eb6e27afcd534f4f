"""Fuzzing (C26): damaged Meta bodies and API bodies never get a 5xx or a traceback.

Thousands of bodies made from the recorded fixtures (tests/fixtures/meta) and the API's own
examples, each damaged by tests.mutations, are posted to one app on the suite's backend (CI runs
the suite on SQLite and on PostgreSQL with Redis). Every Meta body also carries a good message
from a new sender beside the damage: it must be stored and answered whatever its siblings hold.
Examples come from a fixed seed (derandomize), so a CI failure replays exactly.
"""

from __future__ import annotations

import itertools
import json
import logging
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlmodel import Session, col, select

from bot.dev import simulate
from bot.meta import PayloadError, parse_body
from bot.meta.parser import OBJECT
from bot.wiring.services import services
from storage.models import Contact, Message
from tests.api.conftest import CONSENT_TEXT, PHONE_NUMBER_ID, WA_ID, grant, hours_ago, say
from tests.conftest import API_TOKEN, APP_SECRET, META_FIXTURES
from tests.mutations import dumps, mutated

META_BODIES = 2000
API_BODIES = 1000
FIXTURES = [json.loads(path.read_bytes()) for path in sorted(META_FIXTURES.glob("*.json"))]

API_EXAMPLES: dict[str, list[dict[str, Any]]] = {
    "/api/v1/consents": [
        {
            "wa_id": "+1 650-555-1234",
            "categories": ["offers", "orders"],
            "granted": True,
            "source": "web",
            "collected_at": "2025-03-01T13:30:00+04:00",
            "text": CONSENT_TEXT,
            "evidence": {"form": "signup", "ip": "203.0.113.7"},
        },
    ],
    "/api/v1/messages": [
        {"to": "+1 650-555-1234", "category": "orders", "text": "Your order is on its way."},
        {
            "to": "16505551234",
            "category": "offers",
            "template": {"name": "weekly_offers", "language": "en_US", "components": []},
        },
    ],
}


def fuzz_settings(examples: int) -> settings:
    return settings(
        max_examples=examples,
        derandomize=True,  # the same examples on every run and machine
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
    )


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    return {**app_config, "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID}


@pytest.fixture
def logged(caplog: pytest.LogCaptureFixture):  # type: ignore[no-untyped-def]
    """A check that nothing logged since the last call carries a traceback."""
    caplog.set_level(logging.WARNING)
    seen = [0]

    def check() -> None:
        new = caplog.records[seen[0] :]
        seen[0] = len(caplog.records)
        for record in new:
            assert record.exc_info is None, record.getMessage()
            assert "Traceback" not in record.getMessage(), record.getMessage()

    return check


def _sentinel_entry(wa_id: str, wamid: str) -> dict[str, Any]:
    body = simulate.text_body(wa_id=wa_id, text="hello", wamid=wamid, name="Fuzz")
    return json.loads(body)["entry"][0]


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_c26_damaged_meta_bodies_never_fail_and_the_good_sibling_is_answered(app, logged):
    client = app.test_client()
    engine = services(app).engine
    senders = itertools.count()
    posted = [0]

    @fuzz_settings(META_BODIES)
    @given(data=st.data())
    def post_one(data: st.DataObject) -> None:
        fixture = data.draw(st.sampled_from(FIXTURES), label="fixture")
        # One body in twenty is damaged anywhere, envelope included; the rest inside entries.
        anywhere = data.draw(st.integers(0, 19), label="anywhere") == 0
        document = data.draw(mutated(fixture, keep=0 if anywhere else 2), label="document")
        number = next(senders)
        wa_id, wamid = f"4477{number:08d}", f"wamid.FUZZ{number:08d}"
        entries = document.get("entry") if isinstance(document, dict) else None
        sentinel = isinstance(entries, list) and document.get("object") == OBJECT
        if sentinel:
            at = data.draw(st.integers(0, len(entries)), label="sentinel at")
            entries.insert(at, _sentinel_entry(wa_id, wamid))
        body = dumps(document)

        response = client.post(
            "/webhook",
            data=body,
            headers={"X-Hub-Signature-256": simulate.sign(body, APP_SECRET)},
        )
        posted[0] += 1

        assert response.status_code == 200, response.get_data(as_text=True)
        logged()
        if sentinel and not (anywhere and _envelope_unreadable(body)):
            with Session(engine) as session:
                stored = session.exec(select(Message.id).where(Message.wamid == wamid)).first()
                answered = session.exec(
                    select(Message.id)
                    .join(Contact, col(Contact.id) == Message.contact_id)
                    .where(Contact.wa_id == wa_id, Message.direction == "out")
                ).first()
            assert stored is not None, "the good sibling was not stored"
            assert answered is not None, "the good sibling was not answered"

    post_one()
    assert posted[0] >= META_BODIES


@pytest.mark.slow
@pytest.mark.timeout(600)
def test_damaged_api_bodies_are_refused_never_failed(app, api, meta, logged):
    say(meta, WA_ID, at=hours_ago(1))  # a contact who wrote recently and consented
    grant(api, WA_ID, categories=["orders", "offers"])
    client = app.test_client()
    posted = {path: 0 for path in API_EXAMPLES}

    @fuzz_settings(API_BODIES)
    @given(data=st.data())
    def post_one(data: st.DataObject) -> None:
        path = data.draw(st.sampled_from(sorted(API_EXAMPLES)), label="path")
        example = data.draw(st.sampled_from(API_EXAMPLES[path]), label="example")
        body = dumps(data.draw(mutated(example), label="body"))
        headers = {"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"}
        key = data.draw(st.none() | st.sampled_from(["k1", "x" * 255, "x" * 256, "é"]))
        if key is not None:
            headers["Idempotency-Key"] = key

        response = client.post(path, data=body, headers=headers)
        posted[path] += 1

        assert response.status_code < 500, response.get_data(as_text=True)
        assert response.is_json and set(response.json) >= (
            {"error", "message"} if response.status_code >= 400 else set()
        )
        logged()

    post_one()
    assert sum(posted.values()) >= API_BODIES
    assert min(posted.values()) >= API_BODIES // 4  # both routes had their share


def _envelope_unreadable(body: bytes) -> bool:
    # A number JSON cannot hold in the envelope itself makes the whole body unreadable.
    try:
        parse_body(body)
    except PayloadError:
        return True
    return False
