"""C27 end to end: consent stays with the person across numbers, user ids and usernames.

Signed webhook bodies in (Meta's recorded fixtures, or bot.dev.simulate's in the same shapes),
the bodies the Graph API receives out (tests.fake_graph), the business API in between.
"""

from __future__ import annotations

import logging

from sqlalchemy import func
from sqlmodel import Session, select

from storage.models import ConsentEvent, Contact, OtherEvent
from tests.conftest import Api, fixture_bytes
from tests.identity.whatsapp import (
    KAI,
    NEW_NUMBER,
    NEW_USER_ID,
    NUMBER,
    TEMPLATE,
    USER_ID,
    WhatsApp,
    addressed_by_user_id,
    at,
    body_text,
    buttons,
    recorded,
    says,
    taps,
)


def consents(api: Api, key: str) -> dict[str, bool]:
    response = api.get(f"/contacts/{key}")
    assert response.status_code == 200, response.json
    return {category: state["granted"] for category, state in response.json["consents"].items()}


def contacts(engine) -> list[Contact]:
    with Session(engine) as session:
        return list(session.exec(select(Contact)))


def ledger_size(engine) -> int:
    with Session(engine) as session:
        return session.exec(select(func.count()).select_from(ConsentEvent)).one()


def opt_in_by_number(whatsapp: WhatsApp, *, minutes_ago: float = 30) -> None:
    """Sheena writes with her number and user id (text.json) and taps "Yes, all"."""
    (prompt,) = whatsapp.post(recorded("text.json", timestamp=at(minutes_ago)))
    assert prompt.payload["to"] == NUMBER and "recipient" not in prompt.payload
    whatsapp.post(
        recorded(
            "interactive_button_reply.json",
            context_id=prompt.wamid,
            timestamp=at(minutes_ago - 1),
        )
    )


def test_c27_a_username_only_customer_is_prompted_through_recipient_opts_in_and_stops(
    whatsapp, api, engine
):
    # Kai's first message, exactly as recorded: a user id and a username, no number.
    (prompt,) = whatsapp.post(fixture_bytes("username_without_wa_id.json"))
    assert addressed_by_user_id(prompt, KAI)
    assert buttons(prompt) == ["optin:yes", "optin:choose", "optin:no"]
    assert "Nimbus Bakery" in body_text(prompt)

    # The tap, as recorded, answering the prompt the bot sent (its wamid from Meta's answer).
    first = 1760000000  # the recorded first message's time
    (confirmation,) = whatsapp.post(
        recorded(
            "username_button_reply.json",
            context_id=prompt.wamid,
            timestamp=str(first + 60),
        )
    )
    assert addressed_by_user_id(confirmation, KAI)
    assert consents(api, KAI) == {"orders": True, "offers": True}
    contact = api.get(f"/contacts/{KAI}").json
    assert (contact["wa_id"], contact["user_id"], contact["username"]) == (None, KAI, "kai.bakes")
    granted = api.get(f"/contacts/{KAI}/consent-events").json["events"]
    assert {e["evidence"]["prompt_wamid"] for e in granted} == {prompt.wamid}

    # STOP, typed with the user id only: one confirmation, through recipient, and all withdrawn.
    replies = whatsapp.post(
        recorded(
            "username_without_wa_id.json",
            id="wamid.USERNAME0003",
            timestamp=str(first + 120),
            text={"body": "STOP"},
        )
    )
    assert len(replies) == 1 and addressed_by_user_id(replies[0], KAI)
    assert "Nimbus Bakery" in body_text(replies[0])
    assert consents(api, KAI) == {"orders": False, "offers": False}
    assert [
        (e["category"], e["granted"])
        for e in api.get(f"/contacts/{KAI}/consent-events").json["events"][2:]
    ] == [("orders", False), ("offers", False)]
    assert len(contacts(engine)) == 1


def test_c27_the_same_person_with_a_phone_and_later_without_one_is_one_contact(
    whatsapp, api, engine
):
    opt_in_by_number(whatsapp)
    # Weeks later the number is gone from webhooks: the user id alone names her.
    replies = whatsapp.post(says(text="STOP", user_id=USER_ID, when=at(5)))
    assert len(contacts(engine)) == 1
    assert consents(api, NUMBER) == consents(api, USER_ID) == {"orders": False, "offers": False}
    # She still has a number: the confirmation goes to it (`to`), not to the user id.
    assert [r.payload.get("to") for r in replies] == [NUMBER]


def test_c27_a_body_naming_two_contacts_identifiers_makes_them_one_person(whatsapp, api, engine):
    # Known apart first: by number (an old body without user ids), then by user id alone.
    (prompt,) = whatsapp.post(says(text="hello", wa_id=NUMBER, when=at(40)))
    whatsapp.post(taps("cat:orders:yes", "Yes", prompt=prompt, wa_id=NUMBER, when=at(39)))
    (prompt,) = whatsapp.post(says(text="hi", user_id=USER_ID, when=at(30)))
    whatsapp.post(taps("optin:yes", "Yes, all", prompt=prompt, user_id=USER_ID, when=at(29)))
    assert len(contacts(engine)) == 2
    ledger = ledger_size(engine)

    # A message carrying both links them: one contact, every ledger row and consent kept.
    whatsapp.post(recorded("text.json", timestamp=at(10)))
    (person,) = contacts(engine)
    assert (person.wa_id, person.user_id) == (NUMBER, USER_ID)
    assert ledger_size(engine) == ledger
    assert consents(api, NUMBER) == {"orders": True, "offers": True}
    changes = api.get(f"/contacts/{NUMBER}/consent-events").json["identity_changes"]
    assert {(c["field"], c["reason"]) for c in changes} >= {("user_id", "merged")}


def test_c27_after_user_changed_number_the_api_finds_the_consents_under_the_new_number(
    whatsapp, api, engine
):
    opt_in_by_number(whatsapp)
    events = api.get(f"/contacts/{NUMBER}/consent-events").json["events"]

    # WhatsApp's notice, exactly as recorded: nobody is answered, nothing granted or withdrawn.
    assert whatsapp.post(fixture_bytes("system_user_changed_number.json")) == []
    assert consents(api, NEW_NUMBER) == {"orders": True, "offers": True}
    assert api.get(f"/contacts/{NUMBER}").status_code == 404
    answer = api.get(f"/contacts/{NEW_NUMBER}/consent-events").json
    assert answer["events"] == events
    assert {
        (c["field"], c["previous"], c["current"], c["reason"], c["occurred_at"])
        for c in answer["identity_changes"]
    } == {
        ("wa_id", NUMBER, NEW_NUMBER, "user_changed_number", "2025-11-30T07:40:00+00:00"),
        ("user_id", USER_ID, NEW_USER_ID, "user_changed_number", "2025-11-30T07:40:00+00:00"),
    }
    assert {c["evidence"]["wamid"] for c in answer["identity_changes"]} == {"wamid.SYS0001"}
    export = api.get(f"/contacts/{NEW_NUMBER}/export").json
    assert export["identity_changes"] == answer["identity_changes"]
    assert export["contact"]["wa_id"] == NEW_NUMBER

    # Delivered again by Meta: no second change.
    whatsapp.post(fixture_bytes("system_user_changed_number.json"))
    assert len(api.get(f"/contacts/{NEW_NUMBER}/consent-events").json["identity_changes"]) == 2

    # Sends follow the person: a template to the new number goes to the new number.
    response = api.post("/messages", {"to": NEW_NUMBER, "category": "offers", "template": TEMPLATE})
    assert response.status_code == 202, response.json
    (sent,) = whatsapp.send()
    assert sent.payload["to"] == NEW_NUMBER


def test_c27_after_user_changed_user_id_the_api_finds_the_consents_under_the_new_id(
    whatsapp, api, engine
):
    # Known by user id only (the number gone from webhooks), opted in to orders.
    (prompt,) = whatsapp.post(says(text="hi", user_id=USER_ID, when=at(30)))
    assert addressed_by_user_id(prompt, USER_ID)
    whatsapp.post(taps("optin:yes", "Yes, all", prompt=prompt, user_id=USER_ID, when=at(29)))
    ledger = ledger_size(engine)

    assert whatsapp.post(fixture_bytes("system_user_changed_user_id.json")) == []
    assert consents(api, NEW_USER_ID) == {"orders": True, "offers": True}
    assert api.get(f"/contacts/{USER_ID}").status_code == 404
    assert ledger_size(engine) == ledger
    (change,) = api.get(f"/contacts/{NEW_USER_ID}/consent-events").json["identity_changes"]
    assert (change["field"], change["previous"], change["current"], change["reason"]) == (
        "user_id",
        USER_ID,
        NEW_USER_ID,
        "user_changed_user_id",
    )
    assert change["evidence"]["notice"] == "User Sheena Nelson's business-scoped user ID changed"

    # What the bot says next goes to the new id.
    (reply,) = whatsapp.post(says(text="STOP", user_id=NEW_USER_ID, when=at(1)))
    assert addressed_by_user_id(reply, NEW_USER_ID)
    assert consents(api, NEW_USER_ID) == {"orders": False, "offers": False}
    assert len(contacts(engine)) == 1


def test_c27_a_message_delivered_late_after_a_change_still_finds_the_person(whatsapp, api, engine):
    opt_in_by_number(whatsapp, minutes_ago=60 * 24 * 400)  # long before the recorded notice
    whatsapp.post(fixture_bytes("system_user_changed_number.json"))
    # Written a minute before the change, delivered after it: hers, and the change stands.
    notice_time = 1764488400
    (reply,) = whatsapp.post(
        says(text="STOP", wa_id=NUMBER, user_id=USER_ID, when=notice_time - 60)
    )
    (person,) = contacts(engine)
    assert (person.wa_id, person.user_id) == (NEW_NUMBER, NEW_USER_ID)
    assert consents(api, NEW_NUMBER) == {"orders": False, "offers": False}
    assert reply.payload["to"] == NEW_NUMBER


def test_c27_a_notice_about_someone_never_met_is_kept_and_creates_nobody(whatsapp, api, engine):
    assert whatsapp.post(fixture_bytes("system_user_changed_user_id.json")) == []
    assert contacts(engine) == []
    assert api.get(f"/contacts/{NEW_USER_ID}").status_code == 404
    with Session(engine) as session:
        (kept,) = session.exec(select(OtherEvent)).all()
    assert kept.raw["value"]["messages"][0]["id"] == "wamid.SYS0002"


def test_c27_numbers_and_user_ids_stay_out_of_the_logs(whatsapp, api, caplog):
    caplog.set_level(logging.DEBUG)
    opt_in_by_number(whatsapp)
    whatsapp.post(fixture_bytes("system_user_changed_number.json"))
    api.post("/messages", {"to": NEW_NUMBER, "category": "offers", "template": TEMPLATE})
    whatsapp.send()
    assert "user_changed_number: contact" in caplog.text  # the change itself is logged
    for identifier in (NUMBER, NEW_NUMBER, USER_ID, NEW_USER_ID):
        assert identifier not in caplog.text
