"""POST /webhook and GET /webhook as Meta calls them."""

from __future__ import annotations

import json

from sqlmodel import Session, func, select

from storage.models import Contact, FailedPayload, Message, OtherEvent, PreferenceEvent, StatusEvent
from tests.conftest import VERIFY_TOKEN, fixture_bytes


def count(engine, model) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(model)).one()


def only(engine, model, *conditions):
    with Session(engine) as session:
        rows = list(session.exec(select(model).where(*conditions)))
    assert len(rows) == 1, rows
    return rows[0]


def only_inbound(engine) -> Message:
    return only(engine, Message, Message.direction == "in")


def inbound_count(engine) -> int:
    with Session(engine) as session:
        return len(list(session.exec(select(Message.id).where(Message.direction == "in"))))


# --- verification ---------------------------------------------------------------------------


def test_verification_echoes_challenge_as_plain_text(client):
    response = client.get(
        "/webhook",
        query_string={
            "hub.mode": "subscribe",
            "hub.verify_token": VERIFY_TOKEN,
            "hub.challenge": "1158201444",
        },
    )
    assert response.status_code == 200
    assert response.data == b"1158201444"
    assert response.mimetype == "text/plain"


def test_verification_refuses_wrong_token_or_mode(client):
    wrong_token = {"hub.mode": "subscribe", "hub.verify_token": "nope", "hub.challenge": "1"}
    wrong_mode = {"hub.mode": "unsubscribe", "hub.verify_token": VERIFY_TOKEN, "hub.challenge": "1"}
    assert client.get("/webhook", query_string=wrong_token).status_code == 403
    assert client.get("/webhook", query_string=wrong_mode).status_code == 403
    assert client.get("/webhook").status_code == 403


# --- signatures -----------------------------------------------------------------------------


def test_unsigned_body_is_refused_and_nothing_stored(client, engine):
    response = client.post("/webhook", data=fixture_bytes("text.json"))
    assert response.status_code == 401
    assert inbound_count(engine) == 0
    assert count(engine, Contact) == 0


def test_wrongly_signed_body_is_refused_and_nothing_stored(meta, engine):
    response = meta.post(fixture_bytes("text.json"), secret="not-the-app-secret")
    assert response.status_code == 403
    assert meta.post(fixture_bytes("text.json"), signature="sha1=abc").status_code == 403
    assert inbound_count(engine) == 0


def test_reserialised_body_is_refused(meta, engine):
    """A signature over Meta's \\u-escaped bytes does not fit the same JSON re-serialised."""
    original = fixture_bytes("text_arabic_stop.json")
    reserialised = json.dumps(json.loads(original), ensure_ascii=False).encode()
    assert reserialised != original
    from bot.inbound.signature import expected_signature
    from tests.conftest import APP_SECRET

    response = meta.post(reserialised, signature=expected_signature(original, APP_SECRET))
    assert response.status_code == 403
    assert inbound_count(engine) == 0


def test_escaped_arabic_and_emoji_are_accepted_and_decoded(meta, engine):
    body = (
        b'{"object":"whatsapp_business_account","entry":[{"id":"1","changes":[{"field":"messages",'
        b'"value":{"messaging_product":"whatsapp","metadata":{"display_phone_number":"1",'
        b'"phone_number_id":"106540352242922"},"contacts":[{"profile":{"name":"\\u0633\\u0627\\u0631\\u0629"},'
        b'"wa_id":"971501234567"}],"messages":[{"from":"971501234567","id":"wamid.EMOJI1",'
        b'"timestamp":"1750000000","type":"text",'
        b'"text":{"body":"\\u0646\\u0639\\u0645 \\ud83d\\udc4d"}}]}}]}]}'
    )
    assert meta.post(body).status_code == 200
    message = only_inbound(engine)
    assert message.text == "نعم 👍"
    assert only(engine, Contact).name == "سارة"


# --- storage of every fixture ---------------------------------------------------------------


def test_text_message_is_stored_with_contact_and_meta_timestamp(meta, engine):
    assert meta.post_fixture("text.json").status_code == 200
    contact = only(engine, Contact)
    assert (contact.wa_id, contact.user_id, contact.name) == (
        "16505551234",
        "US.1410018717833190",
        "Sheena Nelson",
    )
    assert contact.last_inbound_at.timestamp() == 1749416383
    assert contact.first_inbound_at == contact.last_inbound_at
    message = only_inbound(engine)
    assert message.direction == "in"
    assert message.type == "text"
    assert message.text == "Does it come in another color?"
    assert message.phone_number_id == "106540352242922"
    assert message.meta_timestamp.timestamp() == 1749416383
    assert message.raw["id"] == message.wamid


def test_every_message_fixture_is_stored_with_its_type(meta, engine):
    expected = {
        "image.json": "image",
        "interactive_button_reply.json": "interactive",
        "interactive_list_reply.json": "interactive",
        "reaction.json": "reaction",
        "referral_from_ad.json": "text",
        "template_quick_reply_stop_promotions.json": "button",
        "unsupported.json": "unsupported",
        "text_arabic_stop.json": "text",
        "reaction_removed.json": "reaction",
        "flow_reply.json": "interactive",
        "system_user_changed_number.json": "system",
        "system_user_changed_user_id.json": "system",
    }
    for name, message_type in expected.items():
        assert meta.post_fixture(name).status_code == 200, name
        wamid = json.loads(fixture_bytes(name))["entry"][0]["changes"][0]["value"]["messages"][0][
            "id"
        ]
        with Session(engine) as session:
            stored = session.exec(select(Message).where(Message.wamid == wamid)).one()
        assert stored.type == message_type, name
        assert stored.text, f"{name}: the log needs text or a summary"


def test_batch_of_entries_numbers_and_messages_is_stored_whole(meta, engine):
    body = json.loads(fixture_bytes("batch_two_numbers.json"))
    expected_wamids = {
        m["id"]
        for entry in body["entry"]
        for change in entry["changes"]
        for m in change["value"].get("messages", [])
    }
    expected_numbers = {
        change["value"]["metadata"]["phone_number_id"]
        for entry in body["entry"]
        for change in entry["changes"]
    }
    assert len(expected_wamids) >= 2
    assert meta.post_fixture("batch_two_numbers.json").status_code == 200
    with Session(engine) as session:
        stored = list(session.exec(select(Message).where(Message.direction == "in")))
    assert {m.wamid for m in stored} == expected_wamids
    assert {m.phone_number_id for m in stored} == expected_numbers


def test_contact_without_wa_id_is_keyed_by_user_id(meta, engine, api):
    assert meta.post_fixture("username_without_wa_id.json").status_code == 200
    contact = only(engine, Contact)
    assert contact.wa_id is None
    assert contact.user_id == "US.13491208655302741918"
    assert contact.username == "kai.bakes"
    response = api.get("/contacts/US.13491208655302741918")
    assert response.status_code == 200
    assert response.json["user_id"] == "US.13491208655302741918"


def test_same_message_twice_is_stored_once(meta, engine):
    for _ in range(3):
        assert meta.post_fixture("text.json").status_code == 200
    assert inbound_count(engine) == 1


def test_c20_a_message_twice_in_one_body_has_one_effect(meta, engine):
    from bot.dev import simulate

    message = simulate.text_body(wa_id="491700000777", text="hello", wamid="wamid.TWICE")
    response = meta.post(simulate.batch_body(message, message))
    assert response.status_code == 200
    assert response.json["messages"] == 1
    assert response.json["duplicates"] == 1
    with Session(engine) as session:
        stored = session.exec(select(Message).where(Message.wamid == "wamid.TWICE")).all()
        replies = session.exec(select(Message).where(Message.direction == "out")).all()
    assert [m.text for m in stored] == ["hello"]
    assert len(replies) == 1  # the consent prompt, once


def test_statuses_out_of_order_end_at_the_furthest(meta, engine):
    from storage.contacts import lock_contact
    from storage.db import session_scope
    from storage.models import new_id
    from storage.types import utcnow

    body = json.loads(fixture_bytes("statuses_out_of_order.json"))
    statuses = body["entry"][0]["changes"][0]["value"]["statuses"]
    wamid = statuses[0]["id"]
    with session_scope(engine) as session:
        contact = lock_contact(session, wa_id="16505551234", user_id=None)
        session.add(
            Message(
                id=new_id(),
                contact_id=contact.id,
                direction="out",
                wamid=wamid,
                type="text",
                text="hello",
                status="sent",
                meta_timestamp=utcnow(),
            )
        )
    assert meta.post_fixture("statuses_out_of_order.json").status_code == 200
    assert meta.post_fixture("statuses_out_of_order.json").status_code == 200
    with Session(engine) as session:
        message = session.exec(select(Message).where(Message.wamid == wamid)).one()
        kinds = sorted(e.status for e in session.exec(select(StatusEvent)))
    assert message.status == "read"
    assert kinds == sorted({s["status"] for s in statuses})


def test_failed_status_keeps_metas_error(meta, engine):
    assert meta.post_fixture("status_failed_131047.json").status_code == 200
    event = only(engine, StatusEvent)
    assert (event.wamid, event.status, event.error_code) == ("wamid.OUT0002", "failed", 131047)


def test_user_preferences_are_stored_once(meta, engine):
    assert meta.post_fixture("user_preferences_stop.json").status_code == 200
    assert meta.post_fixture("user_preferences_stop.json").status_code == 200
    event = only(engine, PreferenceEvent)
    assert (event.contact_key, event.value) == ("16505551234", "stop")


def test_unknown_field_is_stored_and_acknowledged(meta, engine):
    payload = {
        "object": "whatsapp_business_account",
        "entry": [{"id": "1", "changes": [{"field": "account_update", "value": {"event": "X"}}]}],
    }
    assert meta.post_json(payload).status_code == 200
    assert meta.post_json(payload).status_code == 200
    assert only(engine, OtherEvent).field == "account_update"


def test_malformed_body_is_kept_for_support_and_acknowledged(meta, engine):
    body = b'{"object": "whatsapp_business_account", "entry": [ this is not json'
    response = meta.post(body)
    assert response.status_code == 200
    kept = only(engine, FailedPayload)
    assert kept.body == body
    assert "JSON" in kept.problem or "json" in kept.problem


def test_broken_message_in_a_batch_loses_neither_it_nor_the_others(meta, engine):
    payload = json.loads(fixture_bytes("text.json"))
    good = payload["entry"][0]["changes"][0]["value"]["messages"][0]
    broken = {k: v for k, v in good.items() if k != "id"}
    payload["entry"][0]["changes"][0]["value"]["messages"] = [broken, good]
    assert meta.post_json(payload).status_code == 200
    assert only_inbound(engine).wamid == good["id"]
    assert "id" in only(engine, FailedPayload).problem


def test_body_over_3_mib_is_refused_with_413(meta, engine):
    body = (
        b'{"object":"whatsapp_business_account","entry":[],"pad":"'
        + b"x" * (4 * 1024 * 1024)
        + b'"}'
    )
    assert meta.post(body).status_code == 413
    assert count(engine, FailedPayload) == 0
