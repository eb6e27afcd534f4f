"""What the answers to our questions do: consent only by an explicit, live act (C01, C02, C04,
C12, C19), refusals, and the one-by-one questions."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest

from flows.catalog import Catalog
from flows.evidence import PROMPT_LIFETIME
from flows.model import Stage
from flows.policy import ConsentSource
from flows.render import render_category_prompt, render_prompt
from flows.versioning import text_version

from .conftest import BOTH, NOW, ChatFactory, asked, purposes, stopped, subscribed

# --- C01: a first message ------------------------------------------------------------------------


def test_c01_first_message_is_answered_with_the_prompt(chat: ChatFactory) -> None:
    c = chat()
    result = c.send("Hi, what is this?")
    assert purposes(result) == ["prompt"]
    assert result.changes == ()
    assert c.state.stage is Stage.ASKED
    assert c.state.asked_at == NOW
    assert c.state.prompt_version == result.replies[0].text_version
    assert c.state.granted == frozenset()


# --- C02 and C12: consent only by an explicit act, recorded exactly ------------------------------


def test_c02_c12_tapped_yes_grants_every_category_with_the_exact_prompt_text(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat)
    prompt_wamid, prompt = c.message_with_button("optin:yes")
    c.wait(timedelta(minutes=3))
    result = c.tap("optin:yes")

    assert [ch.category for ch in result.changes] == ["orders", "offers"]
    for change in result.changes:
        assert change.granted is True
        assert change.source is ConsentSource.WHATSAPP
        assert change.text == render_prompt(catalog, "en").shown_text == prompt.shown_text
        assert change.text_version == prompt.text_version == text_version(change.text)
        assert change.occurred_at == NOW + timedelta(minutes=3)
        assert c.last_in is not None
        assert change.evidence == {"reply_wamid": c.last_in.wamid, "prompt_wamid": prompt_wamid}
    assert c.state.stage is Stage.SUBSCRIBED
    assert c.state.granted == BOTH
    (confirmation,) = result.replies
    assert confirmation.purpose == "confirmation"
    assert "Nimbus Bakery" in confirmation.body
    assert "Order updates" in confirmation.body and "Offers" in confirmation.body
    assert "STOP" in confirmation.body and "PREFERENCES" in confirmation.body


@pytest.mark.parametrize(("language", "typed"), [("en", "yes"), ("en", "Y"), ("ar", "نعم")])
def test_c02_typed_yes_to_the_shown_prompt_is_consent(
    language: str, typed: str, chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat, language)
    prompt_wamid, _ = c.message_with_button("optin:yes")
    result = c.send(typed)
    assert {ch.category for ch in result.changes} == BOTH
    assert all(ch.granted for ch in result.changes)
    # No quoted message: the text is the prompt shown last, and the evidence cites it (C24).
    assert result.changes[0].text == render_prompt(catalog, language).shown_text
    assert c.last_in is not None
    assert result.changes[0].evidence == {
        "reply_wamid": c.last_in.wamid,
        "prompt_wamid": prompt_wamid,
    }
    assert result.replies[0].language == language


def test_c02_confirmation_lists_only_what_was_granted(chat: ChatFactory) -> None:
    c = asked(chat)
    c.tap("optin:choose")
    c.tap("cat:orders:no")
    result = c.tap("cat:offers:yes")
    (confirmation,) = result.replies
    assert "Offers" in confirmation.body
    assert "Order updates" not in confirmation.body
    assert c.state.granted == frozenset({"offers"})


def test_c02_yes_before_any_prompt_is_not_consent(chat: ChatFactory) -> None:
    c = chat()
    result = c.send("yes")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c02_yes_button_without_a_prompt_shown_is_not_consent(
    chat: ChatFactory, catalog: Catalog
) -> None:
    # A correct version but no record of having asked (asked_at unset): nothing to answer.
    c = chat()
    result = c.tap("optin:yes", context_text_version=render_prompt(catalog, "en").text_version)
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


# "ok" was listed here until clear typed agreement became a yes (CONTRACT section 4): see
# test_c02_clear_typed_agreement_is_a_yes_to_the_live_prompt.
@pytest.mark.parametrize(
    "typed", ["sure, why not", "ok but not offers", "👍", "yes please send cakes"]
)
def test_c02_any_other_answer_is_not_consent(typed: str, chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.send(typed)
    assert result.changes == ()
    assert c.state.granted == frozenset()


def test_c02_yes_after_24_hours_is_not_consent_and_the_prompt_is_shown_again(
    chat: ChatFactory,
) -> None:
    c = asked(chat)
    c.wait(PROMPT_LIFETIME + timedelta(seconds=1))
    result = c.tap("optin:yes")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]
    assert c.state.asked_at == c.now
    # Answering the fresh prompt is consent.
    assert {ch.category for ch in c.tap("optin:yes").changes} == BOTH


def test_c02_typed_yes_after_24_hours_is_not_consent(chat: ChatFactory) -> None:
    c = asked(chat)
    c.wait(timedelta(days=2))
    result = c.send("yes")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c02_typed_yes_written_before_the_prompt_was_shown_is_not_consent(
    chat: ChatFactory,
) -> None:
    # "hi" and "yes" sent in one burst: the yes is processed after the prompt went out.
    c = asked(chat)
    c.wait(timedelta(seconds=30))
    result = c.send("yes", timestamp=c.now - timedelta(minutes=1))
    assert result.changes == ()
    assert purposes(result) == ["prompt"]
    # Meta's whole-second timestamps may trail ours a little: that is still an answer.
    assert len(c.send("yes", timestamp=c.now - timedelta(seconds=1)).changes) == 2


def test_c02_yes_just_within_24_hours_is_consent(chat: ChatFactory) -> None:
    c = asked(chat)
    c.wait(PROMPT_LIFETIME)
    assert len(c.tap("optin:yes").changes) == 2


def test_c02_choosing_asks_one_category_at_a_time_and_records_each_answer(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat)
    first = c.tap("optin:choose")
    assert first.changes == ()
    assert purposes(first) == ["category_prompt"]
    assert c.state.stage is Stage.CHOOSING
    assert c.state.pending == ("orders", "offers")

    orders = c.tap("cat:orders:yes")
    (change,) = orders.changes
    assert (change.category, change.granted) == ("orders", True)
    assert change.text == render_category_prompt(catalog, "orders", "en").shown_text
    assert purposes(orders) == ["category_prompt"]
    assert c.state.pending == ("offers",)

    offers = c.tap("cat:offers:no")
    (change,) = offers.changes
    assert (change.category, change.granted) == ("offers", False)
    assert change.text == render_category_prompt(catalog, "offers", "en").shown_text
    assert purposes(offers) == ["confirmation"]
    assert c.state.stage is Stage.SUBSCRIBED
    assert c.state.granted == frozenset({"orders"})
    assert c.state.pending == ()


@pytest.mark.parametrize(("language", "yes", "no"), [("en", "yes", "no"), ("ar", "نعم", "لا")])
def test_c02_typed_answers_work_at_category_questions(
    language: str, yes: str, no: str, chat: ChatFactory
) -> None:
    c = asked(chat, language)
    c.tap("optin:choose")
    assert [(ch.category, ch.granted) for ch in c.send(yes).changes] == [("orders", True)]
    assert [(ch.category, ch.granted) for ch in c.send(no).changes] == [("offers", False)]
    assert c.state.stage is Stage.SUBSCRIBED


def test_declining_everything_records_each_category_declined(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat)
    result = c.tap("optin:no")
    assert [(ch.category, ch.granted) for ch in result.changes] == [
        ("orders", False),
        ("offers", False),
    ]
    assert result.changes[0].text == render_prompt(catalog, "en").shown_text
    assert c.state.stage is Stage.DECLINED
    assert purposes(result) == ["declined"]
    assert "Nimbus Bakery" in result.replies[0].body and "START" in result.replies[0].body


@pytest.mark.parametrize("typed", ["no", "No thanks", "لا", "لا، شكرًا"])
def test_typed_no_at_the_prompt_declines(typed: str, chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.send(typed)
    assert {(ch.category, ch.granted) for ch in result.changes} == {
        ("orders", False),
        ("offers", False),
    }
    assert c.state.stage is Stage.DECLINED


def test_answering_no_to_everything_when_choosing_ends_declined(chat: ChatFactory) -> None:
    c = asked(chat)
    c.tap("optin:choose")
    c.tap("cat:orders:no")
    result = c.tap("cat:offers:no")
    assert c.state.stage is Stage.DECLINED
    assert purposes(result) == ["declined"]


def test_a_no_on_an_outdated_prompt_is_honoured_in_the_customers_words(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = subscribed(chat)
    c.catalog = catalog_factory(name="Nimbus Bakery & Co")  # the prompt wording changes
    result = c.tap("optin:no")
    assert {(ch.category, ch.granted) for ch in result.changes} == {
        ("orders", False),
        ("offers", False),
    }
    assert all(ch.text == "No thanks" for ch in result.changes)
    assert c.state.granted == frozenset()


def test_a_typed_no_with_no_current_question_asks_again(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = asked(chat)
    c.catalog = catalog_factory(name="Other Bakery")
    result = c.send("no")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]
    assert "Other Bakery" in result.replies[0].body


# --- C04: one category at a time -----------------------------------------------------------------


def test_c04_declining_one_category_leaves_the_other(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("PREFERENCES")
    c.tap("optin:choose")
    c.tap("cat:orders:yes")
    result = c.tap("cat:offers:no")
    assert [(ch.category, ch.granted) for ch in result.changes] == [("offers", False)]
    assert c.state.granted == frozenset({"orders"})
    assert c.state.stage is Stage.SUBSCRIBED


def test_c04_an_old_category_button_changes_only_that_category(chat: ChatFactory) -> None:
    c = asked(chat)
    c.tap("optin:choose")
    c.tap("cat:orders:yes")
    c.tap("cat:offers:yes")
    assert c.state.granted == BOTH
    result = c.tap("cat:orders:no")  # scrolled back to the first question
    assert [(ch.category, ch.granted) for ch in result.changes] == [("orders", False)]
    assert c.state.granted == frozenset({"offers"})
    assert purposes(result) == ["confirmation"]


# --- C19: a changed prompt -----------------------------------------------------------------------


def test_c19_button_on_a_changed_prompt_is_not_consent(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = asked(chat)
    c.catalog = catalog_factory(privacy_url="https://nimbus.example/new-privacy")
    result = c.tap("optin:yes")  # on the prompt shown before the change
    assert result.changes == ()
    (prompt,) = result.replies
    assert prompt.purpose == "prompt"
    assert "new-privacy" in prompt.body
    assert c.state.prompt_version == prompt.text_version
    # The current prompt, answered, is consent.
    assert len(c.tap("optin:yes").changes) == 2


def test_c19_button_reporting_an_unknown_version_is_not_consent(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.tap("optin:yes", context_text_version="0123456789abcdef")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c19_without_a_context_version_the_last_shown_version_decides(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = asked(chat)
    c.catalog = catalog_factory(name="Nimbus Patisserie")
    result = c.tap("optin:yes", context_text_version=None)
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c19_typed_yes_after_the_prompt_changed_is_not_consent(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = asked(chat)
    c.catalog = catalog_factory(name="Nimbus Patisserie")
    result = c.send("yes")
    assert result.changes == ()
    assert "Nimbus Patisserie" in result.replies[0].body


def test_c19_category_button_on_a_changed_question_asks_it_again(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat)
    c.tap("optin:choose")
    offers = replace(catalog.categories[1], description={"en": "Discounts", "ar": "الخصومات"})
    c.catalog = replace(catalog, categories=(catalog.categories[0], offers))
    result = c.tap("cat:offers:yes", context_text_version="stale-version")
    assert result.changes == ()
    (question,) = result.replies
    assert [b.id for b in question.buttons] == ["cat:offers:yes", "cat:offers:no"]
    assert c.state.pending[0] == "offers"
    assert "orders" in c.state.pending


# --- preferences ---------------------------------------------------------------------------------


def test_preferences_change_button_walks_every_category(chat: ChatFactory) -> None:
    c = subscribed(chat)
    c.send("settings")
    first = c.tap("optin:choose")
    assert purposes(first) == ["category_prompt"]
    assert c.state.pending == ("orders", "offers")
    c.tap("cat:orders:no")
    c.tap("cat:offers:yes")
    assert c.state.granted == frozenset({"offers"})


def test_preferences_after_stop_lead_back_to_an_opt_in(chat: ChatFactory) -> None:
    c = stopped(chat)
    assert purposes(c.send("PREFERENCES")) == ["preferences"]
    assert purposes(c.tap("optin:choose")) == ["category_prompt"]
    result = c.tap("cat:orders:yes")
    assert [(ch.category, ch.granted) for ch in result.changes] == [("orders", True)]
