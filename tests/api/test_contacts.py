"""GET /api/v1/contacts/{wa_id}, /messages and /consent-events, as the contract's table says."""

from __future__ import annotations

from datetime import datetime

from tests.api.conftest import WA_ID, grant, hours_ago, say


def test_contact_shows_every_configured_category(api, meta):
    say(meta, at=hours_ago(1))
    grant(api, categories=["orders"])
    response = api.get(f"/contacts/{WA_ID}")
    assert response.status_code == 200
    contact = response.json
    assert {"wa_id", "name", "language", "created_at", "last_inbound_at", "suppressed"} <= set(
        contact
    )
    assert contact["wa_id"] == WA_ID
    assert contact["suppressed"] is False
    assert datetime.fromisoformat(contact["last_inbound_at"]).tzinfo is not None
    assert set(contact["consents"]) == {"orders", "offers"}
    assert contact["consents"]["orders"]["granted"] is True
    assert contact["consents"]["orders"]["source"] == "web"
    assert contact["consents"]["offers"] == {"granted": False, "source": None, "updated_at": None}


def test_unknown_contact_is_404_with_an_error_body(api):
    for path in ("", "/messages", "/consent-events"):
        response = api.get(f"/contacts/16505550000{path}")
        assert response.status_code == 404
        assert set(response.json) == {"error", "message"}


def test_messages_are_oldest_first_by_metas_timestamp(api, meta):
    say(meta, at=hours_ago(1), text="second")
    say(meta, at=hours_ago(3), text="first")  # delivered late, written earlier
    messages = api.get(f"/contacts/{WA_ID}/messages").json["messages"]
    inbound = [m for m in messages if m["direction"] == "in"]
    assert [m["text"] for m in inbound] == ["first", "second"]
    stamps = [datetime.fromisoformat(m["timestamp"]) for m in messages]
    assert stamps == sorted(stamps)
    assert {"id", "wamid", "direction", "type", "text", "status", "timestamp", "error"} <= set(
        messages[0]
    )


def test_consent_events_are_append_only(api):
    grant(api, collected_at=hours_ago(3).isoformat())
    first = api.get(f"/contacts/{WA_ID}/consent-events").json["events"]
    grant(api, granted=False, collected_at=hours_ago(2).isoformat())
    second = api.get(f"/contacts/{WA_ID}/consent-events").json["events"]
    assert second[: len(first)] == first
    assert [e["granted"] for e in second] == [True, False]


def test_every_contact_read_needs_a_token(client):
    for path in ("", "/messages", "/consent-events"):
        response = client.get(f"/api/v1/contacts/{WA_ID}{path}")
        assert response.status_code == 401
        assert response.json["error"] == "unauthorized"


def test_every_contact_route_finds_a_contact_by_its_spelled_number(api, meta):
    say(meta, at=hours_ago(1))
    grant(api, categories=["orders"])
    spelled = "+1 650-555-1234"  # WA_ID as a person writes it
    for path in ("", "/messages", "/consent-events", "/export"):
        response = api.get(f"/contacts/{spelled}{path}")
        assert response.status_code == 200, path
    assert api.get(f"/contacts/{spelled}").json["wa_id"] == WA_ID
    assert len(api.get(f"/contacts/{spelled}/consent-events").json["events"]) == 1


def test_an_erased_contact_is_404_on_every_route_and_says_it_was_erased(api, meta):
    grant(api)
    assert api.delete(f"/contacts/{WA_ID}").status_code == 204
    for path in ("", "/messages", "/consent-events", "/export"):
        response = api.get(f"/contacts/{WA_ID}{path}")
        assert response.status_code == 404
        assert "erased" in response.json["message"]
