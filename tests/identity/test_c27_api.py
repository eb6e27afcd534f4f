"""C27 through the business API: a person named by user id, sends that reach Meta by
`recipient`, Meta's 131062, erasure across changes (C18), and coexistence numbers."""

from __future__ import annotations

import json

from sqlalchemy import Text, cast
from sqlmodel import Session, col, select

from storage.models import (
    Contact,
    IdentityChange,
    Message,
    OtherEvent,
    StatusEvent,
)
from tests.conftest import Api, fixture_bytes
from tests.identity.whatsapp import (
    KAI,
    NEW_NUMBER,
    NUMBER,
    TEMPLATE,
    USER_ID,
    WhatsApp,
    addressed_by_user_id,
    at,
    recorded,
    says,
    taps,
)

CONSENT = {
    "categories": ["orders"],
    "granted": True,
    "source": "web",
    "collected_at": "2026-01-05T10:00:00Z",
    "text": "Yes, Nimbus Bakery may send me order updates on WhatsApp.",
}


def opt_in_by_user_id(whatsapp: WhatsApp, user_id: str = KAI, minutes_ago: float = 30) -> None:
    (prompt,) = whatsapp.post(says(text="hi", user_id=user_id, when=at(minutes_ago)))
    whatsapp.post(
        taps("optin:yes", "Yes, all", prompt=prompt, user_id=user_id, when=at(minutes_ago - 1))
    )


def opt_in_by_number(whatsapp: WhatsApp) -> None:
    (prompt,) = whatsapp.post(says(text="hi", wa_id=NUMBER, user_id=USER_ID, when=at(30)))
    whatsapp.post(taps("optin:yes", "Yes, all", prompt=prompt, wa_id=NUMBER, when=at(29)))


def granted(api: Api, key: str) -> dict[str, bool]:
    response = api.get(f"/contacts/{key}")
    assert response.status_code == 200, response.json
    return {category: state["granted"] for category, state in response.json["consents"].items()}


def test_c27_an_api_send_to_a_user_id_reaches_meta_with_recipient(whatsapp, api):
    opt_in_by_user_id(whatsapp)
    text = api.post("/messages", {"to": KAI, "category": "orders", "text": "Your cake is ready"})
    template = api.post("/messages", {"to": f" {KAI} ", "category": "offers", "template": TEMPLATE})
    assert (text.status_code, template.status_code) == (202, 202), (text.json, template.json)

    sent = whatsapp.send()
    assert len(sent) == 2
    assert all(addressed_by_user_id(request, KAI) for request in sent)
    assert sent[0].payload["text"]["body"] == "Your cake is ready"
    assert sent[1].payload["template"]["name"] == TEMPLATE["name"]
    status = api.get(f"/messages/{text.json['id']}").json
    assert (status["status"], status["wamid"]) == ("sent", sent[0].wamid)


def test_c27_a_person_named_by_user_id_who_has_a_number_is_sent_to_the_number(whatsapp, api):
    opt_in_by_number(whatsapp)
    response = api.post("/messages", {"to": USER_ID, "category": "orders", "template": TEMPLATE})
    assert response.status_code == 202, response.json
    (sent,) = whatsapp.send()
    assert sent.payload["to"] == NUMBER and "recipient" not in sent.payload


def test_c27_meta_refusing_a_user_id_with_131062_fails_cleanly_without_retry(whatsapp, api, fake):
    opt_in_by_user_id(whatsapp)
    fake.force(KAI, 131062)
    response = api.post("/messages", {"to": KAI, "category": "orders", "template": TEMPLATE})
    assert response.status_code == 202

    (attempt,) = whatsapp.send()
    assert attempt.outcome == "error 131062"
    assert whatsapp.send() == []  # not retried
    status = api.get(f"/messages/{response.json['id']}").json
    assert status["status"] == "failed"
    assert status["error"]["code"] == 131062
    assert "user id" in status["error"]["title"] and "phone number" in status["error"]["title"]
    assert granted(api, KAI) == {"orders": True, "offers": True}  # about the message only


def test_c27_consent_recorded_for_a_user_id_and_unknown_names_refused(whatsapp, api):
    response = api.post("/consents", {"wa_id": KAI, **CONSENT})
    assert response.status_code == 201, response.json
    assert (response.json["wa_id"], response.json["user_id"]) == (None, KAI)
    assert granted(api, KAI)["orders"] is True
    for bad in ("US.", "us.13491208655302741918", "US.ENT.123456"):
        refused = api.post("/consents", {"wa_id": bad, **CONSENT})
        assert (refused.status_code, refused.json["error"]) == (422, "invalid_number"), bad
        assert refused.json["message"].startswith("wa_id:")
    unknown = api.post("/messages", {"to": "US.99999", "category": "orders", "template": TEMPLATE})
    assert (unknown.status_code, unknown.json["error"]) == (403, "no_consent")


def test_c27_erasure_by_user_id_leaves_only_keyed_hashes(whatsapp, api, engine):
    opt_in_by_user_id(whatsapp)
    assert api.delete(f"/contacts/{KAI}").status_code == 204
    assert api.get(f"/contacts/{KAI}").status_code == 404
    refused = api.post("/messages", {"to": KAI, "category": "orders", "template": TEMPLATE})
    assert (refused.status_code, refused.json["error"]) == (403, "suppressed")
    assert api.post("/consents", {"wa_id": KAI, **CONSENT}).status_code == 409


def test_c27_an_erased_person_who_changes_number_stays_erased(whatsapp, api, engine):
    opt_in_by_number(whatsapp)
    assert api.delete(f"/contacts/{NUMBER}").status_code == 204

    assert whatsapp.post(fixture_bytes("system_user_changed_number.json")) == []
    assert api.get(f"/contacts/{NEW_NUMBER}").status_code == 404
    refused = api.post("/messages", {"to": NEW_NUMBER, "category": "orders", "template": TEMPLATE})
    assert (refused.status_code, refused.json["error"]) == (403, "suppressed")
    assert api.post("/consents", {"wa_id": NEW_NUMBER, **CONSENT}).status_code == 409
    # Neither number is kept in clear anywhere (C18).
    with Session(engine) as session:
        assert session.exec(select(Contact)).all() == []
        assert session.exec(select(Message)).all() == []
        assert session.exec(select(IdentityChange)).all() == []
        for number in (NUMBER, NEW_NUMBER):
            assert not session.exec(
                select(OtherEvent).where(cast(OtherEvent.raw, Text).contains(number))
            ).all()

    # Writing from the new number (after the erasure), they are asked again (C25), and stay
    # suppressed until they opt in.
    (prompt,) = whatsapp.post(says(text="hello", wa_id=NEW_NUMBER, when=at(0)))
    assert prompt.payload["to"] == NEW_NUMBER
    assert api.get(f"/contacts/{NEW_NUMBER}").json["suppressed"] is True
    whatsapp.post(taps("optin:yes", "Yes, all", prompt=prompt, wa_id=NEW_NUMBER, when=at(0)))
    assert api.get(f"/contacts/{NEW_NUMBER}").json["suppressed"] is False


def test_c27_a_suppressed_number_stays_suppressed_under_the_new_number(whatsapp, api):
    opt_in_by_number(whatsapp)
    api.delete(f"/contacts/{NUMBER}")
    # Back, but not opted in again: suppressed; then WhatsApp reports a new number.
    whatsapp.post(says(text="hello", wa_id=NUMBER, user_id=USER_ID, when=at(0)))
    assert api.get(f"/contacts/{NUMBER}").json["suppressed"] is True
    whatsapp.post(recorded("system_user_changed_number.json", timestamp=at(0)))
    assert api.get(f"/contacts/{NEW_NUMBER}").json["suppressed"] is True
    refused = api.post("/messages", {"to": NEW_NUMBER, "category": "orders", "template": TEMPLATE})
    assert (refused.status_code, refused.json["error"]) == (403, "suppressed")


def test_c27_erasing_after_a_change_covers_the_earlier_number(whatsapp, api, engine):
    opt_in_by_number(whatsapp)
    whatsapp.post(recorded("system_user_changed_number.json", timestamp=at(20)))
    assert api.delete(f"/contacts/{NEW_NUMBER}").status_code == 204
    # The earlier number was the person's: suppressed too, and a replay from before is nothing.
    assert api.post("/consents", {"wa_id": NUMBER, **CONSENT}).status_code == 409
    assert whatsapp.post(says(text="yes", wa_id=NUMBER, user_id=USER_ID, when=at(25))) == []
    with Session(engine) as session:
        assert session.exec(select(Contact)).all() == []


def test_c27_echoes_and_history_of_a_coexistence_number_are_kept_never_read(whatsapp, api, engine):
    # Unknown people in the history: nobody is created or asked.
    assert whatsapp.post(fixture_bytes("history.json")) == []
    assert api.get(f"/contacts/{NUMBER}").status_code == 404

    opt_in_by_number(whatsapp)
    # The business's own "STOP" from the Business app, and the customer's old "yes"/"STOP" in the
    # synced history: no answer, no ledger row, consents as they were.
    ledger = api.get(f"/contacts/{NUMBER}/consent-events").json["events"]
    assert whatsapp.post(fixture_bytes("smb_message_echoes.json")) == []
    body = json.loads(fixture_bytes("history.json"))
    body["entry"][0]["changes"][0]["value"]["history"][0]["metadata"]["chunk_order"] = 2
    assert whatsapp.post(json.dumps(body).encode()) == []
    assert granted(api, NUMBER) == {"orders": True, "offers": True}
    assert api.get(f"/contacts/{NUMBER}/consent-events").json["events"] == ledger
    with Session(engine) as session:
        fields = session.exec(select(OtherEvent.field).order_by(col(OtherEvent.id))).all()
    assert fields == ["history", "smb_message_echoes", "history"]
    exported = {e["field"] for e in api.get(f"/contacts/{NUMBER}/export").json["other_events"]}
    assert exported == {"history", "smb_message_echoes"}


def test_c27_a_status_naming_only_the_user_id_moves_the_message(whatsapp, api, engine):
    opt_in_by_user_id(whatsapp)
    response = api.post("/messages", {"to": KAI, "category": "orders", "template": TEMPLATE})
    (sent,) = whatsapp.send()
    status = json.loads(fixture_bytes("status_bsuid_only.json"))
    item = status["entry"][0]["changes"][0]["value"]["statuses"][0]
    item.update(id=sent.wamid, recipient_user_id=KAI, timestamp=str(int(at(0).timestamp())))
    whatsapp.post(json.dumps(status).encode())
    assert api.get(f"/messages/{response.json['id']}").json["status"] == "delivered"
    with Session(engine) as session:
        (event,) = session.exec(select(StatusEvent)).all()
    assert event.recipient_id == KAI
    exported = api.get(f"/contacts/{KAI}/export").json["status_events"]
    assert [e["status"] for e in exported] == ["delivered"]
