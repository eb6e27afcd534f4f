"""The consent rules end to end: signed webhook bodies in, ledger rows and sent replies out.

Each customer is a ChatSession: bodies are built in Meta's shapes, signed, posted to /webhook,
and the outbox is drained through the console transport, which stands in for Meta.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot import create_app
from bot.dev import simulate
from bot.dev.chat import ChatSession
from bot.wiring.services import services
from flows.render import render_prompt
from flows.versioning import text_version
from tests.conftest import ROOT, fixture_bytes
from tests.conversation import (
    PROMPT_BUTTONS,
    WA_ID,
    body_of,
    button_ids,
    button_titles,
    consents,
    ledger,
    opt_in_to_everything,
    shown_text,
)


@pytest.fixture
def customer(app) -> ChatSession:
    return ChatSession(app, wa_id=WA_ID, name="Sheena Nelson")


def test_c01_prompt_names_company_whatsapp_every_category_and_stop(customer):
    replies = customer.say("hi there")
    assert len(replies) == 1
    prompt = body_of(replies)
    assert "Nimbus Bakery" in prompt
    assert "WhatsApp" in prompt
    for title, description in [
        ("Order updates", "Shipping and delivery news"),
        ("Offers", "Discounts and new products"),
    ]:
        assert title in prompt and description in prompt
    assert "STOP" in prompt
    assert button_ids(replies[0]) == ["optin:yes", "optin:choose", "optin:no"]


def test_c02_only_an_explicit_act_is_consent(customer, api):
    customer.say("hello")
    customer.say("sounds lovely")
    customer.send_image()
    assert consents(api) == {"orders": False, "offers": False}
    assert ledger(api) == []
    customer.say("yes")
    assert consents(api) == {"orders": True, "offers": True}


def test_c02_an_answer_to_an_expired_prompt_is_not_consent(customer, api):
    asked = datetime.now(UTC) - timedelta(hours=30)
    customer._post(simulate.text_body(wa_id=WA_ID, text="hello", timestamp=asked))
    prompt_wamid = customer.choices[0].context_wamid
    replies = customer._post(
        simulate.button_reply_body(
            wa_id=WA_ID,
            reply_id="optin:yes",
            title="Yes, all",
            context_wamid=prompt_wamid,
            timestamp=asked + timedelta(hours=25),
        )
    )
    assert consents(api) == {"orders": False, "offers": False}
    assert button_ids(replies[-1]) == ["optin:yes", "optin:choose", "optin:no"]


def test_c03_a_message_from_an_ad_is_never_consent(customer, api):
    replies = customer._post(fixture_bytes("referral_from_ad.json"))
    assert consents(api) == {"orders": False, "offers": False}
    assert ledger(api) == []
    assert button_ids(replies[0]) == ["optin:yes", "optin:choose", "optin:no"]
    replies = customer.say("yes please", from_ad=True)
    assert consents(api) == {"orders": False, "offers": False}


def ad_referral() -> dict:
    """The referral object Meta attaches to a message sent from a click-to-WhatsApp ad."""
    body = json.loads(fixture_bytes("referral_from_ad.json"))
    return body["entry"][0]["changes"][0]["value"]["messages"][0]["referral"]


@pytest.mark.parametrize("typed", ["yes", "YES!", "نعم"])
def test_c03_a_yes_from_an_ad_while_the_prompt_is_live_is_not_consent(customer, api, typed):
    # A plain yes would be consent here: the prompt is current, on screen and minutes old.
    prompt = customer.say("hello")
    assert button_ids(prompt[0]) == PROMPT_BUTTONS
    replies = customer._post(
        simulate.text_body(wa_id=WA_ID, text=typed, name="Sheena Nelson", referral=ad_referral())
    )
    assert consents(api) == {"orders": False, "offers": False}
    assert ledger(api) == []
    # The bot asks explicitly instead: the prompt again, with its three buttons.
    assert len(replies) == 1
    assert button_ids(replies[0]) == PROMPT_BUTTONS
    # The same words without the ad referral are consent, so the referral alone made the difference.
    customer.say(typed)
    assert consents(api) == {"orders": True, "offers": True}


def test_c04_each_category_is_decided_separately(customer, api):
    customer.say("hello")
    replies = customer.press(2)  # Let me choose
    assert button_ids(replies[0]) == ["cat:orders:yes", "cat:orders:no"]
    replies = customer.press(1)  # orders: yes
    assert button_ids(replies[0]) == ["cat:offers:yes", "cat:offers:no"]
    customer.press(2)  # offers: no
    assert consents(api) == {"orders": True, "offers": False}
    customer.say("STOP orders")
    assert consents(api) == {"orders": False, "offers": False}
    customer.say("START")
    customer.press(1)
    customer.say("stop offers")
    assert consents(api) == {"orders": True, "offers": False}


@pytest.mark.parametrize(
    "stop_form",
    [
        " stop ",
        "Stop!",
        "Ｓｔｏｐ",
        "OPT-OUT",
        "إِلْغَاء",
        "ـإلغـاء",
        "\u200fالغاء\u200f",
        "الغاء الاشتراك",
    ],
)
def test_c05_stop_works_in_every_written_form(customer, api, stop_form):
    opt_in_to_everything(customer, api)
    replies = customer.say(stop_form)
    assert len(replies) == 1
    assert consents(api) == {"orders": False, "offers": False}


def test_c05_keywords_work_from_any_state(customer, api):
    customer.say("hello")
    customer.press(2)  # choosing, one category asked
    assert "help@nimbus.example" in body_of(customer.say("HELP"))
    customer.press(1)  # orders: yes (the question is still open)
    assert consents(api) == {"orders": True, "offers": False}
    replies = customer.say("مساعدة")
    # The help, then the question it interrupted, again and now in Arabic.
    assert len(replies) == 2
    assert button_ids(replies[1]) == ["cat:offers:yes", "cat:offers:no"]
    arabic_help = body_of(replies[:1])
    for expected in (
        "Nimbus Bakery",
        "help@nimbus.example",
        "تحديثات الطلبات",
        "أخبار الشحن والتوصيل",
        "العروض",
        "الخصومات والمنتجات الجديدة",
        "توقف",
        "الإعدادات",
    ):
        assert expected in arabic_help
    assert "Order updates" not in arabic_help and "Offers" not in arabic_help
    assert consents(api) == {"orders": True, "offers": False}
    replies = customer.say("توقف")
    assert len(replies) == 1
    assert "Nimbus Bakery" in body_of(replies) and "ابدأ" in body_of(replies)
    assert consents(api) == {"orders": False, "offers": False}


@pytest.mark.parametrize("sentence", ["we must stop this", "don't stop", "please stop by the shop"])
def test_c06_a_keyword_inside_a_sentence_is_not_that_keyword(customer, api, sentence):
    opt_in_to_everything(customer, api)
    customer.say(sentence)
    assert consents(api) == {"orders": True, "offers": True}


def test_c07_stop_withdraws_everything_with_one_confirmation_then_silence(customer, api):
    opt_in_to_everything(customer, api)
    replies = customer.say("STOP")
    assert len(replies) == 1
    confirmation = body_of(replies)
    assert "Nimbus Bakery" in confirmation and "START" in confirmation
    assert consents(api) == {"orders": False, "offers": False}
    withdrawals = [e for e in ledger(api) if not e["granted"]]
    assert sorted(e["category"] for e in withdrawals) == ["offers", "orders"]
    assert customer.say("hello?") == []
    assert customer.send_image() == []
    assert customer.say("what's new") == []


def test_c07_replies_queued_before_stop_are_not_sent_after_it(app, api):
    from sqlmodel import Session, select

    from bot.wiring.services import services
    from storage.models import Message

    customer = ChatSession(app, wa_id=WA_ID)
    # Two messages in one batch: the prompt for the first is queued when STOP arrives.
    body = simulate.batch_body(
        simulate.text_body(wa_id=WA_ID, text="hello"),
        simulate.text_body(wa_id=WA_ID, text="STOP"),
    )
    replies = customer._post(body)
    assert [r.payload["type"] for r in replies] == ["text"]
    with Session(services(app).engine) as session:
        statuses = sorted(
            m.status for m in session.exec(select(Message).where(Message.direction == "out"))
        )
    assert statuses == ["cancelled", "sent"]


def test_c08_stop_with_a_category_withdraws_only_it_and_says_which(customer, api):
    opt_in_to_everything(customer, api)
    replies = customer.say("STOP offers")
    assert "Offers" in body_of(replies)
    assert consents(api) == {"orders": True, "offers": False}
    customer.say("إيقاف الطلبات")
    assert consents(api) == {"orders": False, "offers": False}


def test_c09_start_shows_the_prompt_and_grants_nothing(customer, api):
    opt_in_to_everything(customer, api)
    customer.say("STOP")
    replies = customer.say("START")
    assert button_ids(replies[0]) == ["optin:yes", "optin:choose", "optin:no"]
    assert consents(api) == {"orders": False, "offers": False}
    customer.say("ابدأ")
    assert consents(api) == {"orders": False, "offers": False}


@pytest.mark.parametrize("setup", ["new", "asked", "subscribed", "stopped"])
def test_c10_help_answers_in_every_state_and_changes_nothing(customer, api, setup):
    if setup != "new":
        customer.say("hello")
    if setup in ("subscribed", "stopped"):
        customer.press(1)
    if setup == "stopped":
        customer.say("STOP")
    # A new contact is unknown until its first message: no consents, no ledger.
    known = setup != "new"
    assert (api.get(f"/contacts/{WA_ID}").status_code == 200) is known
    ledger_before = ledger(api) if known else []
    consents_before = consents(api) if known else {"orders": False, "offers": False}
    replies = customer.say("HELP")
    text = body_of(replies[:1])
    # Mid-dialogue the question HELP interrupted is shown again under it.
    assert len(replies) == (2 if setup == "asked" else 1)
    if setup == "asked":
        assert button_ids(replies[1]) == PROMPT_BUTTONS
    for expected in (
        "Nimbus Bakery",
        "help@nimbus.example",
        "Order updates",
        "Offers",
        "STOP",
        "PREFERENCES",
    ):
        assert expected in text
    assert ledger(api) == ledger_before
    assert consents(api) == consents_before


def test_c11_arabic_writers_get_arabic_and_others_the_default(app, api):
    arabic = ChatSession(app, wa_id="971501234567")
    text = body_of(arabic.say("مرحبا"))
    assert "تحديثات الطلبات" in text and "العروض" in text
    assert api.get("/contacts/971501234567").json["language"] == "ar"
    english = ChatSession(app, wa_id="447700900123")
    assert "Order updates" in body_of(english.say("hello"))
    # Choosing Arabic while the prompt is open shows that same prompt again, now in Arabic.
    (switched,) = english.say("العربية")
    switched_body = body_of([switched])
    assert "تحديثات الطلبات" in switched_body and "العروض" in switched_body
    assert "Order updates" not in switched_body
    arabic_prompt = render_prompt(services(app).catalog, "ar")
    assert switched_body == arabic_prompt.body
    assert button_ids(switched) == PROMPT_BUTTONS
    assert button_titles(switched) == ["نعم، الكل", "دعني أختار", "لا، شكرًا"]
    assert api.get("/contacts/447700900123").json["language"] == "ar"


def test_c12_every_decision_is_a_ledger_row_with_its_evidence(customer, api):
    replies = customer.say("hello")
    # The ledger keeps the prompt as the customer saw it: its body and its buttons' titles.
    prompt_text = shown_text(replies[0])
    assert button_titles(replies[0]) == ["Yes, all", "Let me choose", "No thanks"]
    assert prompt_text == render_prompt(services(customer.app).catalog, "en").shown_text
    prompt_wamid = replies[0].wamid
    tapped_at = datetime.now(UTC).replace(microsecond=0)
    tap = simulate.button_reply_body(
        wa_id=WA_ID,
        reply_id="optin:yes",
        title="Yes, all",
        context_wamid=prompt_wamid,
        timestamp=tapped_at,
        wamid="wamid.TAP-C12",
    )
    customer._post(tap)
    events = ledger(api)
    assert sorted(e["category"] for e in events) == ["offers", "orders"]
    for event in events:
        assert event["granted"] is True
        assert event["source"] == "whatsapp"
        assert event["text"] == prompt_text
        assert event["text_version"] == text_version(prompt_text)
        assert event["evidence"] == {"prompt_wamid": prompt_wamid, "reply_wamid": "wamid.TAP-C12"}
        assert datetime.fromisoformat(event["occurred_at"]) == tapped_at
        assert datetime.fromisoformat(event["recorded_at"]) >= tapped_at
    # The conversation log records the very text the ledger cites as shown.
    log = api.get(f"/contacts/{WA_ID}/messages").json["messages"]
    (sent_prompt,) = [m for m in log if m["wamid"] == prompt_wamid]
    assert sent_prompt["direction"] == "out" and sent_prompt["text"] == prompt_text
    customer.say("STOP")
    withdrawals = [e for e in ledger(api) if not e["granted"]]
    assert {e["category"] for e in withdrawals} == {"orders", "offers"}
    assert all(e["text"] == "STOP" and e["source"] == "whatsapp" for e in withdrawals)
    assert all(e["text_version"] == text_version("STOP") for e in withdrawals)


@pytest.mark.parametrize(
    "fixture", ["user_preferences_stop.json", "template_quick_reply_stop_promotions.json"]
)
def test_c13_metas_marketing_opt_out_withdraws_marketing_categories(customer, api, fixture):
    import json

    change = json.loads(fixture_bytes(fixture))["entry"][0]["changes"][0]["value"]
    item = (change.get("user_preferences") or change.get("messages"))[0]
    opted_out_at = datetime.fromtimestamp(int(item["timestamp"]), UTC)
    # The opt-in must come before Meta's opt-out: a later decision is the one that stands.
    customer._post(
        simulate.text_body(wa_id=WA_ID, text="hello", timestamp=opted_out_at - timedelta(hours=1))
    )
    customer._post(
        simulate.button_reply_body(
            wa_id=WA_ID,
            reply_id="optin:yes",
            title="Yes, all",
            context_wamid=customer.choices[0].context_wamid,
            timestamp=opted_out_at - timedelta(minutes=59),
        )
    )
    assert consents(api) == {"orders": True, "offers": True}
    customer._post(fixture_bytes(fixture))
    assert consents(api) == {"orders": True, "offers": False}
    offers = [e for e in ledger(api) if e["category"] == "offers" and not e["granted"]]
    assert len(offers) == 1 and offers[0]["source"] == "meta"
    assert api.get(f"/contacts/{WA_ID}").json["consents"]["offers"]["source"] == "meta"


def test_c19_a_tap_on_a_prompt_whose_text_changed_is_not_consent(
    app_config, api, customer, tmp_path: Path
):
    customer.say("hello")
    old_prompt = customer.choices[0].context_wamid
    changed = (
        (ROOT / "optin.toml")
        .read_text(encoding="utf-8")
        .replace("Discounts and new products", "Discounts, new products and partner offers")
    )
    (tmp_path / "optin.toml").write_text(changed, encoding="utf-8")
    app_config["OPTIN_CONFIG"] = str(tmp_path / "optin.toml")
    changed_app = create_app(app_config)
    later = ChatSession(changed_app, wa_id=WA_ID)
    replies = later._post(
        simulate.button_reply_body(
            wa_id=WA_ID, reply_id="optin:yes", title="Yes, all", context_wamid=old_prompt
        )
    )
    assert consents(api) == {"orders": False, "offers": False}
    assert "partner offers" in body_of(replies)
    assert button_ids(replies[-1]) == ["optin:yes", "optin:choose", "optin:no"]


def test_c20_the_same_message_delivered_twice_has_one_effect(customer, api):
    customer.say("hello")
    tap = simulate.button_reply_body(
        wa_id=WA_ID,
        reply_id="optin:yes",
        title="Yes, all",
        context_wamid=customer.choices[0].context_wamid,
        wamid="wamid.TWICE",
    )
    first = customer._post(tap)
    second = customer._post(tap)
    assert len(first) == 1 and second == []
    assert len(ledger(api)) == 2  # one row per category, once


def test_media_gets_a_polite_answer_in_the_contacts_language_and_keeps_the_dialogue(app, api):
    english = ChatSession(app, wa_id="447700900124")
    english.say("hello")
    replies = english.send_image()
    assert len(replies) == 1 and replies[0].payload["type"] == "text"
    english.press(1)  # the prompt's buttons still work after the picture
    assert consents(api, "447700900124") == {"orders": True, "offers": True}
    arabic = ChatSession(app, wa_id="971501234568")
    arabic.say("مرحبا")
    reply = body_of(arabic.send_image())
    assert any("\u0600" <= ch <= "\u06ff" for ch in reply)


def test_the_conversation_log_shows_each_reply_after_the_message_it_answers(customer, api):
    customer.say("hello")
    customer.press(1)
    customer.say("STOP")
    log = api.get(f"/contacts/{WA_ID}/messages").json["messages"]
    assert [m["direction"] for m in log] == ["in", "out", "in", "out", "in", "out"]
    assert [m["status"] for m in log if m["direction"] == "out"] == ["sent"] * 3


def test_c11_a_guessed_language_follows_their_writing_a_chosen_one_stays(app, api):
    guessed = ChatSession(app, wa_id="971501234569")
    assert "العروض" in body_of(guessed.say("مرحبا"))
    assert "Offers" in body_of(guessed.say("sorry, English please?"))
    chosen = ChatSession(app, wa_id="971501234570")
    chosen.say("hello")
    assert "العروض" in body_of(chosen.say("العربية"))
    assert "العروض" in body_of(chosen.say("HELP"))
    assert api.get("/contacts/971501234570").json["language"] == "ar"
