"""Every way a customer says stop, and the evidence behind every decision, end to end (C21-C24):
signed webhook bodies in, ledger rows and sent replies out, on SQLite or PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from bot.dev import simulate
from bot.dev.chat import BotMessage, ChatSession
from tests.conftest import Api
from tests.conversation import (
    PROMPT_BUTTONS,
    WA_ID,
    body_of,
    button_ids,
    consents,
    ledger,
    opt_in_to_everything,
)

NOBODY = {"orders": False, "offers": False}
EVERYTHING = {"orders": True, "offers": True}


@pytest.fixture
def customer(app) -> ChatSession:
    return ChatSession(app, wa_id=WA_ID, name="Sheena Nelson")


def row_ids(message: BotMessage) -> list[str]:
    sections = message.payload.get("interactive", {}).get("action", {}).get("sections", [])
    return [row["id"] for section in sections for row in section["rows"]]


def tap(customer: ChatSession, reply_id: str, context_wamid: str | None) -> list[BotMessage]:
    """A tap whose context is whatever the test says, not necessarily a message shown."""
    return customer._post(
        simulate.button_reply_body(
            wa_id=customer.wa_id, reply_id=reply_id, title="Yes", context_wamid=context_wamid
        )
    )


# --- C21: opting out in the customer's own words -------------------------------------------------


@pytest.mark.parametrize(
    "words",
    ["stop please", "please stop!!", "unsubscribe me", "remove me", "بطل", "لا تراسلني", "ستوب"],
)
def test_c21_a_clear_stop_in_own_words_withdraws_like_stop(customer, api: Api, words: str):
    opt_in_to_everything(customer, api)
    replies = customer.say(words)
    assert len(replies) == 1 and replies[0].payload["type"] == "text"
    assert "Nimbus Bakery" in body_of(replies)
    assert consents(api) == NOBODY
    withdrawals = [e for e in ledger(api) if not e["granted"]]
    assert sorted(e["category"] for e in withdrawals) == ["offers", "orders"]
    assert all(e["text"] == words and e["source"] == "whatsapp" for e in withdrawals)
    assert customer.say("hello?") == []  # C07: nothing more until they opt in again


@pytest.mark.parametrize("words", ["no more offers please", "ما بدي عروض"])
def test_c21_own_words_naming_a_category_withdraw_only_it(customer, api: Api, words: str):
    opt_in_to_everything(customer, api)
    replies = customer.say(words)
    assert len(replies) == 1
    assert consents(api) == {"orders": True, "offers": False}


@pytest.mark.parametrize(
    "words", ["don't stop my orders", "can you stop by tomorrow?", "cancel my order", "الغي الطلب"]
)
def test_c21_a_sentence_about_stopping_something_else_changes_nothing(
    customer, api: Api, words: str
):
    opt_in_to_everything(customer, api)
    rows = len(ledger(api))
    replies = customer.say(words)
    assert consents(api) == EVERYTHING
    assert len(ledger(api)) == rows
    assert not any(row_ids(r) or "stopask" in str(r.payload) for r in replies)


def test_c21_words_that_may_be_asking_get_one_tap_and_each_choice_is_honoured(customer, api: Api):
    opt_in_to_everything(customer, api)
    (question,) = customer.say("too many messages")
    # Stop all, stop either category, or change nothing: four choices, so a list.
    assert question.payload["interactive"]["type"] == "list"
    assert row_ids(question) == [
        "stopask:all",
        "stopask:orders",
        "stopask:offers",
        "stopask:keep",
    ]
    assert consents(api) == EVERYTHING
    (confirmation,) = customer.press(3)  # "Stop Offers", answered as a list reply
    assert "Offers" in body_of([confirmation])
    assert consents(api) == {"orders": True, "offers": False}
    (withdrawal,) = [e for e in ledger(api) if not e["granted"]]
    assert withdrawal["evidence"]["prompt_wamid"] == question.wamid  # the question answered


def test_c21_stopask_all_withdraws_like_stop_and_keep_changes_nothing_and_says_so(
    customer, api: Api
):
    opt_in_to_everything(customer, api)
    customer.say("كفاية")
    (kept,) = customer.press(4)  # لا تغيّر شيئًا
    assert "لم يتغيّر شيء" in body_of([kept])
    assert consents(api) == EVERYTHING
    customer.say("how do I unsubscribe?")
    (stopped,) = customer.press(1)  # Stop everything
    assert "START" in body_of([stopped])
    assert consents(api) == NOBODY


# --- C22: first words that ask to stop -----------------------------------------------------------


@pytest.mark.parametrize("words", ["stop please", "لا تراسلني", "STOP"])
def test_c22_first_words_that_ask_to_stop_are_never_answered_with_a_prompt(
    customer, api: Api, words: str
):
    replies = customer.say(words)
    assert len(replies) == 1 and replies[0].payload["type"] == "text"
    assert "Nimbus Bakery" in body_of(replies)
    assert consents(api) == NOBODY
    assert ledger(api) == []
    assert customer.say("hello") == []  # left stopped: no prompt now either


# --- C23: a withdrawal retires every prompt shown before it --------------------------------------


def test_c23_a_tap_on_a_prompt_shown_before_stop_is_not_consent(customer, api: Api):
    (prompt,) = customer.say("hello")
    customer.say("STOP")
    replies = tap(customer, "optin:yes", prompt.wamid)
    assert consents(api) == NOBODY
    assert ledger(api) == []
    # The current prompt instead; a tap on that one is consent.
    assert button_ids(replies[-1]) == PROMPT_BUTTONS
    customer.press(1)
    assert consents(api) == EVERYTHING


def test_c23_a_typed_yes_after_stopping_one_category_is_not_consent(customer, api: Api):
    customer.say("hello")
    customer.say("STOP offers")
    replies = customer.say("yes")
    assert consents(api) == NOBODY
    assert button_ids(replies[-1]) == PROMPT_BUTTONS


# --- C24: verified evidence ----------------------------------------------------------------------


def test_c24_a_tap_citing_a_prompt_sent_to_someone_else_grants_nothing(app, api: Api):
    other = ChatSession(app, wa_id="447700900123")
    (their_prompt,) = other.say("hello")
    customer = ChatSession(app, wa_id=WA_ID)
    customer.say("hello")
    for context in (their_prompt.wamid, "wamid.MADE-UP", None):
        replies = tap(customer, "optin:yes", context)
        assert consents(api) == NOBODY
        assert button_ids(replies[-1]) == PROMPT_BUTTONS
    assert ledger(api) == []


def test_c24_a_typed_answer_records_the_prompt_it_answered(customer, api: Api):
    (prompt,) = customer.say("hello")
    customer._post(simulate.text_body(wa_id=WA_ID, text="yes", wamid="wamid.TYPED-YES"))
    assert consents(api) == EVERYTHING
    for event in ledger(api):
        assert event["evidence"] == {"prompt_wamid": prompt.wamid, "reply_wamid": "wamid.TYPED-YES"}


def test_c24_a_prompt_id_in_the_ledger_is_always_one_we_sent_that_contact(app, api: Api):
    other = ChatSession(app, wa_id="447700900123")
    (their_prompt,) = other.say("hello")
    customer = ChatSession(app, wa_id=WA_ID)
    opt_in_to_everything(customer, api)
    # STOP written as a reply quoting someone else's message: honoured, citing only itself.
    customer._post(
        simulate.text_body(
            wa_id=WA_ID, text="STOP", wamid="wamid.STOP", context_wamid=their_prompt.wamid
        )
    )
    assert consents(api) == NOBODY
    ours = {m["wamid"] for m in api.get(f"/contacts/{WA_ID}/messages").json["messages"]}
    for event in ledger(api):
        cited = event["evidence"].get("prompt_wamid")
        assert cited is None or cited in ours
    assert all(
        e["evidence"] == {"reply_wamid": "wamid.STOP"} for e in ledger(api) if not e["granted"]
    )


# --- friendlier answers --------------------------------------------------------------------------


@pytest.mark.parametrize("words", ["sure", "ok", "موافق", "أيوه", "اكيد"])
def test_clear_typed_agreement_is_a_yes_to_the_live_prompt(customer, api: Api, words: str):
    customer.say("hello")
    (confirmation,) = customer.say(words)
    assert consents(api) == EVERYTHING
    assert "Nimbus Bakery" in body_of([confirmation])


def test_an_answer_not_understood_gets_a_one_line_hint(customer, api: Api):
    customer.say("hello")
    (hint,) = customer.say("what is this about?")
    assert hint.payload["type"] == "text"
    assert body_of([hint]) == "Sorry, I did not understand. Tap a button above, or reply YES or NO."
    customer.say("yes")
    assert consents(api) == EVERYTHING


def test_c07_a_second_stop_in_a_row_sends_nothing(customer, api: Api):
    opt_in_to_everything(customer, api)
    assert len(customer.say("STOP")) == 1
    assert customer.say("STOP") == []
    assert customer.say("stop please") == []


def test_start_when_subscribed_says_what_they_receive_and_how_to_change_it(customer, api: Api):
    opt_in_to_everything(customer, api)
    (reply,) = customer.say("START")
    text = body_of([reply])
    assert "already" in text and "Order updates" in text and "Offers" in text
    assert button_ids(reply) == ["optin:choose"]
    assert consents(api) == EVERYTHING


def test_help_mid_dialogue_shows_the_pending_question_again(customer, api: Api):
    customer.say("hello")
    help_reply, prompt = customer.say("HELP")
    assert "help@nimbus.example" in body_of([help_reply])
    assert button_ids(prompt) == PROMPT_BUTTONS
    customer.press(1)
    assert consents(api) == EVERYTHING


def test_c11_an_arabic_customer_typing_a_latin_keyword_stays_in_arabic(app, api: Api):
    arabic = ChatSession(app, wa_id="971501234567")
    arabic.say("مرحبا")
    (reply,) = arabic.say("STOP")
    assert "Nimbus Bakery" in body_of([reply]) and "ابدأ" in body_of([reply])
    assert api.get("/contacts/971501234567").json["language"] == "ar"
