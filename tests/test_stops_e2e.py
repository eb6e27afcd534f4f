"""The evidence behind every decision, end to end (C23, C24): signed webhook bodies in, ledger
rows and sent replies out, on SQLite or PostgreSQL and Redis."""

from __future__ import annotations

import pytest

from bot.dev import simulate
from bot.dev.chat import BotMessage, ChatSession
from tests.conftest import Api
from tests.conversation import (
    PROMPT_BUTTONS,
    WA_ID,
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
