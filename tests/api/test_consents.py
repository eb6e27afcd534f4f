"""POST /api/v1/consents: consent collected elsewhere, recorded with its text and evidence (C16)."""

from __future__ import annotations

import json
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from flows.versioning import text_version
from storage.models import ConsentEvent, Contact, IdempotencyRecord
from tests.api.conftest import CONSENT_TEXT, WA_ID, consent_body, count, grant
from tests.conftest import API_TOKEN


@pytest.mark.parametrize("source", ["web", "sms", "email", "ivr", "paper", "whatsapp"])
def test_c16_consent_from_each_source_is_recorded_with_text_and_evidence(api, source):
    collected = datetime(2025, 3, 1, 9, 30, tzinfo=UTC)
    response = api.post(
        "/consents",
        consent_body(
            categories=["orders", "offers"],
            source=source,
            collected_at="2025-03-01T13:30:00+04:00",
            evidence={"form": "checkout", "submission": 8812},
        ),
    )
    assert response.status_code == 201, response.json
    answer = response.json
    assert answer["wa_id"] == WA_ID
    assert [e["category"] for e in answer["events"]] == ["orders", "offers"]
    assert answer["consents"]["offers"]["granted"] is True
    assert answer["consents"]["offers"]["source"] == source
    assert answer["confirmation"] is None

    ledger = api.get(f"/contacts/{WA_ID}/consent-events").json["events"]
    assert len(ledger) == 2
    for event in ledger:
        assert event["granted"] is True
        assert event["source"] == source
        assert event["text"] == CONSENT_TEXT
        assert event["text_version"] == text_version(CONSENT_TEXT)
        assert event["evidence"] == {"form": "checkout", "submission": 8812}
        assert datetime.fromisoformat(event["occurred_at"]) == collected

    contact = api.get(f"/contacts/{WA_ID}").json
    assert contact["consents"]["orders"]["granted"] is True
    assert contact["consents"]["offers"]["source"] == source


def test_c16_one_ledger_row_per_category_and_the_contact_is_created(api, engine):
    assert count(engine, Contact) == 0
    grant(api, categories=["orders", "offers", "orders"])  # a repeated id counts once
    assert count(engine, Contact) == 1
    assert count(engine, ConsentEvent) == 2


def test_c16_withdrawal_is_recorded_and_leaves_other_categories_alone(api):
    grant(api, categories=["orders", "offers"])
    response = api.post("/consents", consent_body(categories=["offers"], granted=False))
    assert response.status_code == 201
    consents = api.get(f"/contacts/{WA_ID}").json["consents"]
    assert consents["offers"]["granted"] is False
    assert consents["orders"]["granted"] is True
    assert [e["granted"] for e in api.get(f"/contacts/{WA_ID}/consent-events").json["events"]] == [
        True,
        True,
        False,
    ]


def test_c16_an_older_decision_is_kept_in_the_ledger_but_does_not_override_a_newer_one(api):
    now = datetime.now(UTC)
    grant(api, collected_at=(now - timedelta(hours=1)).isoformat())
    late = api.post(
        "/consents",
        consent_body(granted=False, collected_at=(now - timedelta(days=2)).isoformat()),
    )
    assert late.status_code == 201
    assert api.get(f"/contacts/{WA_ID}").json["consents"]["offers"]["granted"] is True
    assert len(api.get(f"/contacts/{WA_ID}/consent-events").json["events"]) == 2


@pytest.mark.parametrize(
    ("spelled", "wa_id"),
    [
        ("+971 50 123 4567", "971501234567"),
        ("971501234567", "971501234567"),
        ("00971501234567", "971501234567"),
        ("+1 650-555-1234", "16505551234"),
        ("+1 (650) 555.1234", "16505551234"),
    ],
)
def test_c16_numbers_are_normalised_to_wa_ids(api, spelled, wa_id):
    assert grant(api, spelled)["wa_id"] == wa_id
    assert api.get(f"/contacts/{wa_id}").status_code == 200


@pytest.mark.parametrize(
    "number", ["12", "not a number", "+999 1234 5678", "+1 800 FLOWERS", "+44 7700 900123", ""]
)
def test_c16_a_bad_number_is_422_naming_the_field(api, number):
    response = api.post("/consents", consent_body(number))
    assert response.status_code == 422
    assert response.json["error"] == "invalid_number"
    assert response.json["message"].startswith("wa_id:")


def test_c16_a_number_whatsapp_already_reported_is_accepted_even_if_unassigned(api, meta):
    # UK drama numbers are not valid for phonenumbers, but a contact WhatsApp reported is real.
    from bot.dev import simulate

    meta.post(simulate.text_body(wa_id="447700900001", text="hi"))
    assert grant(api, "+44 7700 900001")["wa_id"] == "447700900001"


def test_c16_source_ad_is_refused_citing_the_rule(api, engine):
    response = api.post("/consents", consent_body(source="ad"))
    assert response.status_code == 422
    assert response.json["error"] == "ad_is_not_consent"
    assert "C03" in response.json["message"]
    assert response.json["message"].startswith("source:")
    assert count(engine, ConsentEvent) == 0
    assert count(engine, Contact) == 0


@pytest.mark.parametrize("source", ["meta", "facebook", "", 3, None])
def test_c16_unknown_source_is_422(api, source):
    response = api.post("/consents", consent_body(source=source))
    assert response.status_code == 422
    assert response.json["message"].startswith("source:")


def test_c16_unknown_category_is_422_naming_it(api, engine):
    response = api.post("/consents", consent_body(categories=["offers", "lottery"]))
    assert response.status_code == 422
    assert response.json["error"] == "unknown_category"
    assert response.json["message"].startswith("categories[1]:")
    assert "lottery" in response.json["message"]
    assert count(engine, ConsentEvent) == 0


@pytest.mark.parametrize("text", [None, "", "   ", 42])
def test_c16_missing_or_blank_text_is_422(api, text):
    body = consent_body(text=text)
    if text is None:
        del body["text"]
    response = api.post("/consents", body)
    assert response.status_code == 422
    assert response.json["message"].startswith("text:")


@pytest.mark.parametrize(
    ("collected_at", "problem"),
    [
        ("2025-03-01T09:30:00", "zone"),
        ("2025-03-01 09:30:00+00:00", "ISO 8601"),
        ("yesterday", "ISO 8601"),
        ("2025-02-30T09:30:00Z", "ISO 8601"),
        (1740821400, "ISO 8601"),
        ((datetime.now(UTC) + timedelta(days=1)).isoformat(), "future"),
    ],
)
def test_c16_collected_at_must_be_a_past_timestamp_with_a_zone(api, collected_at, problem):
    response = api.post("/consents", consent_body(collected_at=collected_at))
    assert response.status_code == 422
    assert response.json["error"] == "invalid_timestamp"
    assert response.json["message"].startswith("collected_at:")
    assert problem in response.json["message"]


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("wa_id", None),
        ("categories", None),
        ("categories", []),
        ("categories", "offers"),
        ("granted", None),
        ("granted", "yes"),
        ("collected_at", None),
        ("evidence", "a scan"),
        ("evidence", {"blob": "x" * 20_000}),
    ],
)
def test_a_bad_field_is_422_naming_it(api, field, value):
    body = consent_body()
    if value is None:
        del body[field]
    else:
        body[field] = value
    response = api.post("/consents", body)
    assert response.status_code == 422
    assert set(response.json) == {"error", "message"}
    assert response.json["message"].startswith(f"{field}:")


def test_a_body_that_is_not_json_is_400_and_not_an_object_is_422(api):
    headers = {**api.headers, "Content-Type": "application/json"}
    broken = api.client.post("/api/v1/consents", data=b"{not json", headers=headers)
    assert broken.status_code == 400
    assert broken.json["error"] == "invalid_json"
    listed = api.client.post("/api/v1/consents", data=b"[1, 2]", headers=headers)
    assert listed.status_code == 422
    assert listed.json["error"] == "invalid_body"


def test_a_body_sent_as_a_form_is_415(api):
    response = api.client.post("/api/v1/consents", data={"wa_id": WA_ID}, headers=api.headers)
    assert response.status_code == 415
    assert response.json["error"] == "unsupported_media_type"


def test_without_a_valid_token_nothing_is_recorded(client, engine):
    body = consent_body()
    assert client.post("/api/v1/consents", json=body).status_code == 401
    wrong = client.post("/api/v1/consents", json=body, headers={"Authorization": "Bearer nope"})
    assert wrong.status_code == 401
    assert wrong.json["error"] == "unauthorized"
    assert count(engine, ConsentEvent) == 0


def test_idempotency_key_replays_the_first_answer_and_records_once(api, engine):
    key = {"Idempotency-Key": "signup-8812"}
    body = consent_body()
    first = api.post("/consents", body, headers=key)
    again = api.post("/consents", body, headers=key)
    assert first.status_code == again.status_code == 201
    assert again.json == first.json
    assert again.headers["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first.headers
    assert count(engine, ConsentEvent) == 1


def test_idempotency_key_is_the_same_request_whatever_the_key_order(api, engine):
    key = {"Idempotency-Key": "k-1"}
    body = consent_body()
    api.post("/consents", body, headers=key)
    reordered = dict(reversed(list(body.items())))
    assert api.post("/consents", reordered, headers=key).headers["Idempotent-Replayed"] == "true"
    assert count(engine, ConsentEvent) == 1


def test_idempotency_key_reused_with_another_body_is_422(api, engine):
    key = {"Idempotency-Key": "k-2"}
    api.post("/consents", consent_body(), headers=key)
    response = api.post("/consents", consent_body(categories=["orders"]), headers=key)
    assert response.status_code == 422
    assert response.json["error"] == "idempotency_key_reused"
    assert count(engine, ConsentEvent) == 1


def test_idempotency_keys_belong_to_the_token_that_used_them(app_config, make_app, engine):
    app = make_app(API_TOKENS=f"{API_TOKEN},second-token")
    client = app.test_client()
    key = {"Idempotency-Key": "same-key"}
    for token in (API_TOKEN, "second-token"):
        response = client.post(
            "/api/v1/consents",
            json=consent_body(),
            headers={"Authorization": f"Bearer {token}", **key},
        )
        assert response.status_code == 201
        assert "Idempotent-Replayed" not in response.headers
    assert count(engine, ConsentEvent) == 2
    assert count(engine, IdempotencyRecord) == 2


def test_a_refused_request_is_not_remembered_under_its_key(api, engine):
    key = {"Idempotency-Key": "k-3"}
    body = consent_body()
    assert api.post("/consents", body | {"source": "ad"}, headers=key).status_code == 422
    assert api.post("/consents", body, headers=key).status_code == 201
    assert count(engine, ConsentEvent) == 1


@pytest.mark.parametrize("key", ["", "has space", "x" * 256, "ключ"])
def test_a_malformed_idempotency_key_is_422(api, key):
    response = api.client.post(
        "/api/v1/consents",
        json=consent_body(),
        headers={**api.headers, "Idempotency-Key": key.encode().decode("latin-1")},
    )
    assert response.status_code == 422
    assert response.json["error"] == "invalid_idempotency_key"


def test_concurrent_retries_with_one_idempotency_key_record_once(app, live_server_factory, engine):
    import requests

    base = live_server_factory(app)
    body = consent_body()
    headers = {"Authorization": f"Bearer {API_TOKEN}", "Idempotency-Key": "burst-1"}

    def post(_: int) -> tuple[int, dict]:
        response = requests.post(f"{base}/api/v1/consents", json=body, headers=headers, timeout=30)
        return response.status_code, response.json()

    with ThreadPoolExecutor(8) as pool:
        answers = list(pool.map(post, range(8)))
    assert {status for status, _ in answers} == {201}
    assert len({json.dumps(answer, sort_keys=True) for _, answer in answers}) == 1
    assert count(engine, ConsentEvent) == 1


def test_an_unsupported_method_is_405_with_allow(api):
    response = api.client.put("/api/v1/consents", json=consent_body(), headers=api.headers)
    assert response.status_code == 405
    assert response.json["error"] == "method_not_allowed"
    assert "POST" in response.headers["Allow"]
