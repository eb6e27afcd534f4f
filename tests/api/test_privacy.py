"""Access (C17) and erasure with suppression (C18)."""

from __future__ import annotations

import json
import logging

import pytest
from sqlmodel import Session, select

from bot.dev import simulate
from bot.wiring.services import services
from storage.db import session_scope
from storage.inbox import keep_failed_payload, keep_other_event
from storage.models import (
    Consent,
    ConsentEvent,
    Contact,
    DialogueRow,
    ErasureRecord,
    FailedPayload,
    IdempotencyRecord,
    Message,
    OtherEvent,
    OutboxItem,
    PreferenceEvent,
    StatusEvent,
    Suppression,
)
from storage.suppression import suppression_digest
from tests.api.conftest import OTHER_WA_ID, WA_ID, consent_body, count, grant, hours_ago, say
from tests.conftest import API_TOKEN

TEMPLATE = {"name": "weekly_offers", "language": "en"}


def a_full_history(app, api, meta) -> str:
    """A contact with a conversation, a ledger, a business send with statuses; its send's id."""
    say(meta, at=hours_ago(2), text="hello")
    grant(api, categories=["orders", "offers"], evidence={"form": "signup", "ip": "203.0.113.7"})
    sent = api.post("/messages", {"to": WA_ID, "category": "offers", "text": "Fresh bread!"})
    assert sent.status_code == 202
    services(app).dispatcher(concurrency=1).drain()
    wamid = api.get(f"/messages/{sent.json['id']}").json["wamid"]
    meta.post(simulate.status_body(wamid=wamid, status="delivered", recipient_id=WA_ID))
    meta.post(simulate.preference_body(wa_id=WA_ID, value="resume"))
    return sent.json["id"]


def test_c17_export_returns_everything_held_on_the_contact(app, api, meta):
    a_full_history(app, api, meta)
    response = api.get(f"/contacts/{WA_ID}/export")
    assert response.status_code == 200
    assert response.headers["Content-Disposition"].startswith("attachment")
    document = response.json

    assert document["contact"]["wa_id"] == WA_ID
    assert document["contact"]["consents"]["offers"]["granted"] is True
    assert {c["category"] for c in document["consents"]} == {"orders", "offers"}
    ledger = document["consent_events"]
    assert ledger == api.get(f"/contacts/{WA_ID}/consent-events").json["events"]
    assert {e["source"] for e in ledger} >= {"web"}
    assert all(e["text"] and e["text_version"] for e in ledger)
    assert ledger[-1]["evidence"] == {"form": "signup", "ip": "203.0.113.7"}

    messages = document["messages"]
    inbound = next(m for m in messages if m["direction"] == "in")
    assert inbound["text"] == "hello"
    assert inbound["raw"]["from"] == WA_ID  # Meta's payload as received
    outbound = next(m for m in messages if m["purpose"] == "business")
    assert outbound["raw"]["text"]["body"] == "Fresh bread!"  # the body as sent to Meta
    assert outbound["status"] == "delivered"
    assert [s["status"] for s in document["status_events"]] == ["delivered"]
    assert [p["value"] for p in document["preference_events"]] == ["resume"]
    assert "exported_at" in document


def test_c17_export_includes_raw_events_naming_the_number_but_not_others(app, api, meta, engine):
    grant(api)
    with session_scope(engine) as session:
        keep_other_event(session, field="calls", entry_id="1", raw={"from": WA_ID})
        keep_other_event(session, field="calls", entry_id="2", raw={"from": "1" + WA_ID})
        keep_failed_payload(session, body=json.dumps({"wa_id": WA_ID}).encode(), problem="bad")
    document = api.get(f"/contacts/{WA_ID}/export").json
    assert [o["raw"] for o in document["other_events"]] == [{"from": WA_ID}]
    assert len(document["unparsed_payloads"]) == 1
    assert WA_ID in document["unparsed_payloads"][0]["body"]


def test_c17_export_of_an_unknown_contact_is_404(api):
    response = api.get("/contacts/16505550000/export")
    assert response.status_code == 404
    assert response.json["error"] == "not_found"


def test_c17_export_needs_a_token(client):
    assert client.get(f"/api/v1/contacts/{WA_ID}/export").status_code == 401


def test_c18_erasure_removes_the_contact_and_everything_about_it(app, api, meta, engine):
    a_full_history(app, api, meta)
    grant(api, OTHER_WA_ID)  # someone else, who must not be touched
    say(meta, OTHER_WA_ID)

    response = api.delete(f"/contacts/{WA_ID}")
    assert response.status_code == 204
    assert response.data == b""

    for path in ("", "/messages", "/consent-events", "/export"):
        gone = api.get(f"/contacts/{WA_ID}{path}")
        assert gone.status_code == 404, path
    assert count(engine, Contact, Contact.wa_id == WA_ID) == 0
    with Session(engine) as session:
        other = session.exec(select(Contact).where(Contact.wa_id == OTHER_WA_ID)).one()
    for model, column in (
        (Message, Message.contact_id),
        (ConsentEvent, ConsentEvent.contact_id),
        (Consent, Consent.contact_id),
        (DialogueRow, DialogueRow.contact_id),
    ):
        assert count(engine, model, column != other.id) == 0, model.__name__
        assert count(engine, model, column == other.id) > 0, model.__name__
    assert count(engine, StatusEvent) == 0
    assert count(engine, PreferenceEvent) == 0
    assert count(engine, OutboxItem, OutboxItem.payload["to"].as_string() == WA_ID) == 0


def test_c18_erasure_keeps_only_a_keyed_hash_and_records_who_erased(app, api, engine):
    grant(api)
    api.delete(f"/contacts/{WA_ID}")
    key = services(app).settings.suppression_key
    with Session(engine) as session:
        suppression = session.get(Suppression, suppression_digest(key, WA_ID))
        assert suppression is not None
        assert suppression.reason == "erasure"
        [record] = session.exec(select(ErasureRecord)).all()
    assert record.digest == suppression_digest(key, WA_ID)
    assert record.token_fingerprint == api_fingerprint()
    assert record.removed["contacts"] == 1
    assert record.removed["consent_events"] == 1
    assert WA_ID not in json.dumps(record.removed) + record.digest + suppression.digest


def api_fingerprint() -> str:
    from bot.api.auth import fingerprint

    return fingerprint(API_TOKEN)


def test_c18_sends_to_an_erased_number_are_refused_as_suppressed(api, meta, engine):
    say(meta)
    grant(api)
    api.delete(f"/contacts/{WA_ID}")
    response = api.post("/messages", {"to": "+1 650 555 1234", "category": "offers", "text": "hi"})
    assert response.status_code == 403
    assert response.json["error"] == "suppressed"
    assert count(engine, Message, Message.purpose == "business") == 0


def test_c18_old_consents_cannot_be_reimported_for_an_erased_number(api, engine):
    collected_before = consent_body(collected_at=hours_ago(48).isoformat())
    grant(api)
    api.delete(f"/contacts/{WA_ID}")
    for body in (collected_before, consent_body(), consent_body(granted=False)):
        response = api.post("/consents", body)
        assert response.status_code == 409
        assert response.json["error"] == "suppressed"
    assert count(engine, Contact) == 0
    assert count(engine, ConsentEvent) == 0


def test_c18_erased_numbers_leave_the_audience(api):
    grant(api)
    grant(api, OTHER_WA_ID)
    api.delete(f"/contacts/{WA_ID}")
    lines = api.get("/audience?category=offers").get_data(as_text=True).splitlines()
    assert [line.split(",")[0] for line in lines] == ["wa_id", OTHER_WA_ID]


def test_c18_queued_sends_are_erased_with_the_contact(api, meta, engine):
    say(meta)
    grant(api)
    api.post("/messages", {"to": WA_ID, "category": "offers", "text": "soon"})
    api.delete(f"/contacts/{WA_ID}")
    assert count(engine, OutboxItem) == 0


def test_c18_erasure_removes_stored_raw_events_and_answers_naming_the_number(api, engine):
    grant(api, evidence={}, categories=["orders"])
    api.post("/consents", consent_body(categories=["offers"]), headers={"Idempotency-Key": "again"})
    with session_scope(engine) as session:
        keep_other_event(session, field="calls", entry_id="1", raw={"from": WA_ID})
        keep_other_event(session, field="calls", entry_id="2", raw={"from": "1" + WA_ID})
        keep_failed_payload(session, body=f'{{"from": "{WA_ID}"'.encode(), problem="cut short")
        keep_failed_payload(session, body=b'{"from": "15550001111"', problem="cut short")
    assert count(engine, IdempotencyRecord) == 1

    api.delete(f"/contacts/{WA_ID}")
    with Session(engine) as session:
        others = session.exec(select(OtherEvent.raw)).all()
        failed = [bytes(b) for b in session.exec(select(FailedPayload.body)).all()]
    assert others == [{"from": "1" + WA_ID}]  # a longer number is someone else
    assert failed == [b'{"from": "15550001111"']
    assert count(engine, IdempotencyRecord) == 0


def test_c18_erasing_an_unknown_or_already_erased_contact_is_404(api):
    assert api.delete("/contacts/16505550000").status_code == 404
    grant(api)
    assert api.delete(f"/contacts/{WA_ID}").status_code == 204
    again = api.delete(f"/contacts/{WA_ID}")
    assert again.status_code == 404
    assert again.json["error"] == "not_found"
    assert "erased" in again.json["message"]


def test_c18_a_contact_can_be_named_by_its_spelled_number(api):
    grant(api)
    assert api.delete("/contacts/+1 650-555-1234").status_code == 204


def test_c18_erasure_needs_a_token(client, api, engine):
    grant(api)
    assert client.delete(f"/api/v1/contacts/{WA_ID}").status_code == 401
    assert count(engine, Contact) == 1


def test_c18_only_a_new_opt_in_on_whatsapp_lifts_the_suppression(app, api, meta):
    grant(api)
    api.delete(f"/contacts/{WA_ID}")
    say(meta, text="hello")  # writing again is not consent: still suppressed
    assert api.get(f"/contacts/{WA_ID}").json["suppressed"] is True
    say(meta, text="yes")  # a typed yes to the consent prompt (C02)
    contact = api.get(f"/contacts/{WA_ID}").json
    assert contact["suppressed"] is False
    assert contact["consents"]["offers"]["granted"] is True


@pytest.mark.parametrize("action", ["consent", "send", "erase"])
def test_the_number_never_appears_in_clear_in_the_logs(api, meta, caplog, action):
    caplog.set_level(logging.DEBUG)
    say(meta)
    grant(api)
    if action == "send":
        api.post("/messages", {"to": WA_ID, "category": "offers", "text": "hi"})
    if action == "erase":
        api.delete(f"/contacts/{WA_ID}")
    api_lines = [r.getMessage() for r in caplog.records if r.name.startswith("bot.api")]
    assert api_lines
    assert not [line for line in api_lines if WA_ID in line]
    assert not [line for line in api_lines if API_TOKEN in line]
