"""What the keyword transitions do: STOP, STOP <category>, START, HELP, a language (C07-C11)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from flows.catalog import Catalog
from flows.model import Stage
from flows.policy import ConsentSource
from flows.render import render_prompt
from flows.versioning import text_version

from .conftest import BOTH, ChatFactory, asked, choosing, purposes, stopped, subscribed

# --- C07: STOP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("typed", "start"), [("STOP", "START"), ("توقف", "ابدأ")])
def test_c07_stop_withdraws_everything_with_one_confirmation_naming_company_and_start(
    typed: str, start: str, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    result = c.send(typed)
    assert [(ch.category, ch.granted) for ch in result.changes] == [
        ("orders", False),
        ("offers", False),
    ]
    (reply,) = result.replies
    assert reply.purpose == "stop"
    assert "Nimbus Bakery" in reply.body
    assert start in reply.body
    assert reply.buttons == ()
    # The customer's own words are the record of the withdrawal.
    assert all(ch.text == typed and ch.text_version == text_version(typed) for ch in result.changes)
    assert all(ch.source is ConsentSource.WHATSAPP for ch in result.changes)
    assert c.last_in is not None
    assert result.changes[0].evidence == {"reply_wamid": c.last_in.wamid}


def test_c07_stop_in_arabic_is_confirmed_in_arabic(chat: ChatFactory) -> None:
    c = subscribed(chat)
    (reply,) = c.send("إلغاء الاشتراك").replies
    assert reply.language == "ar"
    assert c.state.language == "ar"


def test_c07_repeated_stop_adds_no_ledger_rows_and_sends_nothing(chat: ChatFactory) -> None:
    c = stopped(chat)
    rows = len(c.ledger)
    result = c.send("stop")
    assert result.changes == ()
    assert len(c.ledger) == rows
    assert result.replies == ()  # exactly one confirmation: the first STOP's


def test_c23_yes_button_on_a_prompt_shown_before_stop_asks_again(chat: ChatFactory) -> None:
    c = stopped(chat)  # the prompt was shown minutes ago, and its wording is still current
    result = c.tap("optin:yes")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]  # the current prompt, sent after the stop
    assert c.state.stage is Stage.ASKED
    # A tap on that one opts in again.
    assert {ch.category for ch in c.tap("optin:yes").changes} == BOTH
    assert c.state.stage is Stage.SUBSCRIBED


def test_c07_yes_button_on_an_expired_prompt_after_stop_asks_again(chat: ChatFactory) -> None:
    c = stopped(chat)
    c.wait(timedelta(days=3))
    result = c.tap("optin:yes")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


# --- C08: STOP <category> ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("typed", "category", "title", "kept"),
    [
        ("stop offers", "offers", "Offers", "orders"),
        ("STOP promotions", "offers", "Offers", "orders"),
        ("stop order updates", "orders", "Order updates", "offers"),
        ("إيقاف العروض", "offers", "العروض", "orders"),
        ("إيقاف الطلبات", "orders", "تحديثات الطلبات", "offers"),
    ],
)
def test_c08_stop_category_withdraws_only_that_category_and_names_it(
    typed: str, category: str, title: str, kept: str, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    result = c.send(typed)
    assert [(ch.category, ch.granted) for ch in result.changes] == [(category, False)]
    assert result.changes[0].text == typed
    assert c.state.granted == frozenset({kept})
    assert c.state.stage is Stage.SUBSCRIBED
    (reply,) = result.replies
    assert reply.purpose == "stop_category"
    assert title in reply.body
    assert "Nimbus Bakery" in reply.body


def test_c08_stopping_the_last_category_leaves_the_contact_declined(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("stop offers")
    c.send("stop orders")
    assert c.state.granted == frozenset()
    assert c.state.stage is Stage.DECLINED


def test_c08_stopping_a_category_never_granted_adds_no_row(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.send("stop offers")
    assert result.changes == ()
    assert purposes(result) == ["stop_category"]


def test_c08_stop_category_while_choosing_skips_that_question(chat: ChatFactory) -> None:
    c = choosing(chat)  # orders granted, offers about to be asked
    result = c.send("stop offers")
    assert result.changes == ()
    assert c.state.pending == ()
    assert c.state.stage is Stage.SUBSCRIBED


# --- C09: START ----------------------------------------------------------------------------------


def test_c09_start_after_stop_shows_the_prompt_and_grants_nothing(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send("START")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]
    assert c.state.granted == frozenset()
    assert c.state.stage is Stage.ASKED
    # Only the answer to that prompt grants.
    assert {ch.category for ch in c.tap("optin:yes").changes} == BOTH


# --- C10: HELP -----------------------------------------------------------------------------------


def test_c10_help_while_stopped_is_answered(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send("help")
    assert purposes(result) == ["help"]
    assert c.state.stage is Stage.STOPPED


# --- C11: switching language ---------------------------------------------------------------------


def test_c11_language_keyword_shows_the_prompt_again_in_that_language(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.send("العربية")
    (prompt,) = result.replies
    assert (prompt.purpose, prompt.language) == ("prompt", "ar")
    assert c.state.language == "ar"
    assert c.state.prompt_version == prompt.text_version
    assert result.changes == ()


def test_c11_language_keyword_while_choosing_asks_the_same_question_again(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)
    (question,) = c.send("Arabic").replies
    assert (question.purpose, question.language) == ("category_prompt", "ar")
    assert [b.id for b in question.buttons] == ["cat:offers:yes", "cat:offers:no"]


def test_c11_language_keyword_when_settled_confirms_the_switch(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send("عربي")
    assert purposes(result) == ["language"]
    assert result.replies[0].language == "ar"
    assert c.state.granted == BOTH


def test_c11_language_keyword_while_stopped_is_answered(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send("العربية")
    assert purposes(result) == ["language"]
    assert c.state.stage is Stage.STOPPED


def test_c11_c12_answer_records_the_language_of_the_prompt_answered(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat, "ar")
    _, arabic_prompt = c.message_with_button("optin:yes")
    c.send("English")  # switches and shows the English prompt
    # ...but they tap "yes" on the Arabic one they read first.
    result = c.tap("optin:yes", context_text_version=arabic_prompt.text_version)
    assert result.changes[0].text == render_prompt(catalog, "ar").shown_text
    assert result.replies[0].language == "en"
