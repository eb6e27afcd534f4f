"""C31-C33 end to end: group messages, edits, deletions, reactions and welcome requests posted as
signed bodies, with the ledger, the stored rows and what was sent checked after each."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
from sqlmodel import Session, select

from bot.dev import simulate
from bot.dev.chat import ChatSession
from bot.dev.simulate_kinds import (
    edit_body,
    group_text_body,
    reaction_body,
    request_welcome_body,
    revoke_body,
)
from storage.models import Message, StatusEvent
from tests.conftest import fixture_bytes
from tests.test_dialogue_e2e import (
    PROMPT_BUTTONS,
    WA_ID,
    button_ids,
    consents,
    ledger,
    opt_in_to_everything,
)


@pytest.fixture
def customer(app) -> ChatSession:
    return ChatSession(app, wa_id=WA_ID, name="Sheena Nelson")


GROUP = "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjM0MDQ2OTQyMzM4MjA="


def stored(engine, wamid: str) -> Message:
    with Session(engine) as session:
        return session.exec(select(Message).where(Message.wamid == wamid)).one()


def test_c31_a_group_yes_never_grants_and_gets_no_answer(customer, api, engine):
    prompt = customer.say("hello")
    assert button_ids(prompt[0]) == PROMPT_BUTTONS
    sent = customer._post(
        group_text_body(wa_id=WA_ID, text="yes", group_id=GROUP, wamid="wamid.G1")
    )
    assert sent == []
    assert consents(api) == {"orders": False, "offers": False}
    assert ledger(api) == []
    assert stored(engine, "wamid.G1").group_id == GROUP
    # The private prompt is still live: a tap on it is still consent.
    customer.press(1)
    assert consents(api) == {"orders": True, "offers": True}


def test_c31_a_group_message_from_a_stranger_starts_no_private_dialogue(app, api):
    stranger = ChatSession(app, wa_id="447700900555")
    assert stranger._post(group_text_body(wa_id="447700900555", text="hello", group_id=GROUP)) == []
    contact = api.get("/contacts/447700900555").json
    assert all(not v["granted"] for v in contact["consents"].values())


def test_c31_a_stop_in_a_group_withdraws_that_participant_without_a_reply(customer, api):
    opt_in_to_everything(customer, api)
    sent = customer._post(group_text_body(wa_id=WA_ID, text="STOP", group_id=GROUP))
    assert sent == []
    assert consents(api) == {"orders": False, "offers": False}


def test_c31_a_group_message_leaves_the_participants_contact_record_alone(customer, api):
    written = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    customer._post(simulate.text_body(wa_id=WA_ID, text="hello", timestamp=written))
    before = api.get(f"/contacts/{WA_ID}").json
    assert before["language"] == "en"
    later = written + timedelta(hours=30)
    group = group_text_body(wa_id=WA_ID, text="مرحبا بالجميع", group_id=GROUP, timestamp=later)
    assert customer._post(group) == []
    after = api.get(f"/contacts/{WA_ID}").json
    # Neither the service window (C15) nor the language (C11) moves for words said in a group.
    assert (after["last_inbound_at"], after["language"]) == (before["last_inbound_at"], "en")
    assert after["first_inbound_at"] == before["first_inbound_at"]


def test_c31_a_stop_in_a_group_withdraws_but_touches_nothing_else(customer, api):
    opt_in_to_everything(customer, api)
    before = api.get(f"/contacts/{WA_ID}").json
    later = datetime.now(UTC) + timedelta(hours=2)
    stop = group_text_body(wa_id=WA_ID, text="إلغاء", group_id=GROUP, timestamp=later)
    assert customer._post(stop) == []
    after = api.get(f"/contacts/{WA_ID}").json
    assert consents(api) == {"orders": False, "offers": False}
    assert (after["last_inbound_at"], after["language"]) == (
        before["last_inbound_at"],
        before["language"],
    )


def test_c32_an_edit_into_stop_withdraws(customer, api, engine):
    opt_in_to_everything(customer, api)
    customer._post(simulate.text_body(wa_id=WA_ID, text="thanks!", wamid="wamid.ORIG"))
    sent = customer._post(
        edit_body(wa_id=WA_ID, original_wamid="wamid.ORIG", text="STOP", wamid="wamid.E1")
    )
    assert len(sent) == 1  # at most the stop confirmation
    assert consents(api) == {"orders": False, "offers": False}
    edit = stored(engine, "wamid.E1")
    assert (edit.original_wamid, edit.type, edit.text) == ("wamid.ORIG", "edit", "STOP")
    assert stored(engine, "wamid.ORIG").text == "thanks!"  # the original is kept as it was


def test_c32_an_edit_into_yes_never_grants(customer, api):
    customer.say("hello")
    original = simulate.text_body(wa_id=WA_ID, text="hmm", wamid="wamid.ORIG2")
    customer._post(original)
    assert customer._post(edit_body(wa_id=WA_ID, original_wamid="wamid.ORIG2", text="yes")) == []
    assert consents(api) == {"orders": False, "offers": False}


def test_c33_a_removed_reaction_and_a_deletion_get_no_reply(customer, api, engine):
    customer.say("hello")
    prompt_wamid = customer.choices[0].context_wamid
    assert customer._post(reaction_body(wa_id=WA_ID, message_id=prompt_wamid, emoji="👍")) == []
    assert customer._post(reaction_body(wa_id=WA_ID, message_id=prompt_wamid)) == []
    deletion = revoke_body(wa_id=WA_ID, original_wamid="wamid.GONE", wamid="wamid.R1")
    assert customer._post(deletion) == []
    assert stored(engine, "wamid.R1").original_wamid == "wamid.GONE"
    assert ledger(api) == []
    # Nothing above was an answer: the prompt's buttons still work.
    customer.press(1)
    assert consents(api) == {"orders": True, "offers": True}


def test_c33_request_welcome_gets_the_prompt(customer, api):
    replies = customer._post(request_welcome_body(wa_id=WA_ID))
    assert len(replies) == 1 and button_ids(replies[0]) == PROMPT_BUTTONS
    assert ledger(api) == []


def test_c33_request_welcome_after_choosing_shows_the_current_choices(customer, api):
    opt_in_to_everything(customer, api)
    replies = customer._post(request_welcome_body(wa_id=WA_ID))
    assert len(replies) == 1
    assert button_ids(replies[0]) != PROMPT_BUTTONS
    assert consents(api) == {"orders": True, "offers": True}


def test_status_rows_keep_the_user_id_and_the_group_participant(customer, engine):
    customer.say("hello")
    wamid = customer.choices[0].context_wamid
    user_id = "US.1410018717833190"
    read = simulate.status_body(
        wamid=wamid, status="read", recipient_id=None, recipient_user_id=user_id
    )
    customer._post(read)
    customer._post(read)  # redelivered: stored once
    delivered = json.loads(
        simulate.status_body(wamid=wamid, status="delivered", recipient_id=GROUP)
    )
    item = delivered["entry"][0]["changes"][0]["value"]["statuses"][0]
    item |= {"recipient_type": "group", "recipient_participant_id": WA_ID}
    customer._post(json.dumps(delivered).encode())
    with Session(engine) as session:
        rows = {
            row.status: row
            for row in session.exec(select(StatusEvent).where(StatusEvent.wamid == wamid))
        }
    assert rows["read"].recipient_user_id == user_id
    assert (rows["delivered"].recipient_id, rows["delivered"].recipient_participant_id) == (
        GROUP,
        WA_ID,
    )


def test_a_group_status_keeps_the_participant_by_user_id_when_no_number_is_given(customer, engine):
    customer.say("hello")
    wamid = customer.choices[0].context_wamid
    read = json.loads(simulate.status_body(wamid=wamid, status="read", recipient_id=GROUP))
    item = read["entry"][0]["changes"][0]["value"]["statuses"][0]
    item |= {"recipient_type": "group", "recipient_participant_user_id": "US.1410018717833190"}
    customer._post(json.dumps(read).encode())
    with Session(engine) as session:
        row = session.exec(select(StatusEvent).where(StatusEvent.wamid == wamid)).one()
    assert (row.recipient_id, row.recipient_participant_id) == (GROUP, "US.1410018717833190")


def test_pictures_get_the_polite_answer_once_per_question(customer, api):
    customer.say("hello")
    assert len(customer.send_image()) == 1
    assert customer.send_image() == []
    assert customer._post(simulate.media_body(wa_id=WA_ID, media_type="sticker")) == []
    customer.press(1)  # the prompt's buttons still work
    assert consents(api) == {"orders": True, "offers": True}


def test_a_flow_answer_is_kept_with_its_fields_and_is_not_an_answer_to_the_prompt(
    customer, api, engine
):
    customer.say("hello")
    assert customer._post(fixture_bytes("flow_reply.json")) == []
    assert ledger(api) == []
    assert "orders=true, offers=false" in stored(engine, "wamid.FLOW0001").text


def test_c31_a_stop_in_a_group_cancels_what_was_queued_for_that_participant(app, engine):
    customer = ChatSession(app, wa_id=WA_ID)
    # The prompt for "hello" is still queued when the group STOP arrives in the same batch.
    body = simulate.batch_body(
        simulate.text_body(wa_id=WA_ID, text="hello"),
        group_text_body(wa_id=WA_ID, text="STOP", group_id=GROUP),
    )
    assert customer._post(body) == []
    with Session(engine) as session:
        statuses = [
            m.status for m in session.exec(select(Message).where(Message.direction == "out"))
        ]
    assert statuses == ["cancelled"]
