"""Bad input to the API gets a clear 4xx and loses nothing; never a 500 (C26)."""

from __future__ import annotations

import json

import pytest

from tests.api.conftest import CONSENT_TEXT, WA_ID
from tests.conftest import API_TOKEN


def consent(**changes):  # type: ignore[no-untyped-def]
    body = {
        "wa_id": WA_ID,
        "categories": ["offers"],
        "granted": True,
        "source": "web",
        "collected_at": "2026-01-31T09:30:00+04:00",
        "text": CONSENT_TEXT,
        "evidence": {"form": "signup"},
    }
    return {**body, **changes}


def post_raw(client, path: str, raw: bytes):  # type: ignore[no-untyped-def]
    return client.post(
        f"/api/v1{path}",
        data=raw,
        headers={"Authorization": f"Bearer {API_TOKEN}", "Content-Type": "application/json"},
    )


def test_c26_a_timestamp_at_the_edge_of_the_calendar_is_refused_not_a_crash(api):
    response = api.post("/consents", consent(collected_at="0001-01-01T00:00:00+14:00"))
    assert response.status_code == 422
    assert response.json["error"] == "invalid_timestamp"


def test_c26_a_body_nested_beyond_reason_is_refused(client):
    deep = b'{"wa_id": ' + b"[" * 100_000 + b"]" * 100_000 + b"}"
    response = post_raw(client, "/consents", deep)
    assert response.status_code in (400, 422)
    assert set(response.json) == {"error", "message"}


@pytest.mark.parametrize("bad", ["\ud800", "nul\x00byte"])
def test_c26_text_that_no_database_can_keep_is_refused(client, bad):
    raw = json.dumps(consent(text=f"I agree {bad}")).encode()  # \\ud800 as JSON escapes it
    response = post_raw(client, "/consents", raw)
    assert response.status_code == 422
    assert response.json["error"] == "invalid_field"


@pytest.mark.parametrize("literal", [b"NaN", b"Infinity", b"-Infinity"])
def test_c26_json_that_is_not_json_nan_and_infinity_is_refused(client, api, literal):
    raw = json.dumps(consent(evidence={"score": 1})).encode().replace(b"1}", literal + b"}")
    response = post_raw(client, "/consents", raw)
    assert response.status_code in (400, 422)
    assert api.get(f"/contacts/{WA_ID}").status_code == 404  # nothing was recorded
