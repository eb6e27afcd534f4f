"""The consent dialogue, one test per rule (COMPLIANCE C01–C13, C19) and per transition."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from datetime import timedelta

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from flows.catalog import Catalog, Category
from flows.dialogue import TRANSITIONS, marketing_preference, step
from flows.keywords import Intent, match_keyword
from flows.model import (
    DialogueState,
    Inbound,
    InboundKind,
    Reply,
    Stage,
    StepResult,
)
from flows.policy import META_OPT_OUT_TEXT, ConsentSource
from flows.render import render_category_prompt, render_prompt
from flows.signals import Signal
from flows.transitions import PROMPT_LIFETIME
from flows.versioning import text_version

from .conftest import NOW, Chat

ChatFactory = Callable[..., Chat]
BOTH = frozenset({"orders", "offers"})


def purposes(result: StepResult) -> list[str]:
    return [r.purpose for r in result.replies]


def asked(chat: ChatFactory, language: str | None = None, **state: object) -> Chat:
    """A contact who has just been shown the consent prompt (language None: not chosen yet)."""
    c = chat(DialogueState(language=language, language_chosen=language is not None, **state))  # type: ignore[arg-type]
    c.send("Hello")
    assert c.state.stage is Stage.ASKED
    return c


def subscribed(chat: ChatFactory, language: str | None = None) -> Chat:
    c = asked(chat, language)
    c.tap("optin:yes")
    assert c.state.granted == BOTH
    return c


def stopped(chat: ChatFactory) -> Chat:
    c = subscribed(chat)
    c.send("STOP")
    assert c.state.stage is Stage.STOPPED
    return c


# --- C01: the prompt ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "whatsapp", "stop"), [("en", "WhatsApp", "STOP"), ("ar", "واتساب", "توقف")]
)
def test_c01_prompt_names_company_whatsapp_categories_and_stop(
    language: str, whatsapp: str, stop: str, catalog: Catalog
) -> None:
    prompt = render_prompt(catalog, language)
    assert prompt.purpose == "prompt"
    assert prompt.language == language
    assert "Nimbus Bakery" in prompt.body
    assert whatsapp in prompt.body
    for category in catalog.categories:
        assert category.title[language] in prompt.body
        assert category.description[language] in prompt.body
    assert stop in prompt.body
    assert "https://nimbus.example/privacy" in prompt.body
    assert [b.id for b in prompt.buttons] == ["optin:yes", "optin:choose", "optin:no"]


def test_c01_prompt_without_privacy_url_leaves_it_out(
    catalog_factory: Callable[..., Catalog],
) -> None:
    prompt = render_prompt(catalog_factory(privacy_url=None), "en")
    assert "http" not in prompt.body
    assert prompt.text_version != render_prompt(catalog_factory(), "en").text_version


@pytest.mark.parametrize(
    ("language", "whatsapp", "stop"), [("en", "WhatsApp", "STOP"), ("ar", "واتساب", "توقف")]
)
def test_c01_category_question_names_company_category_whatsapp_and_stop(
    language: str, whatsapp: str, stop: str, catalog: Catalog
) -> None:
    question = render_category_prompt(catalog, "offers", language)
    assert question.purpose == "category_prompt"
    assert question.language == language
    assert "Nimbus Bakery" in question.body
    assert whatsapp in question.body
    assert catalog.category("offers").title[language] in question.body  # type: ignore[union-attr]
    assert stop in question.body
    assert [b.id for b in question.buttons] == ["cat:offers:yes", "cat:offers:no"]


def test_c01_first_message_is_answered_with_the_prompt(chat: ChatFactory) -> None:
    c = chat()
    result = c.send("Hi, what is this?")
    assert purposes(result) == ["prompt"]
    assert result.changes == ()
    assert c.state.stage is Stage.ASKED
    assert c.state.asked_at == NOW
    assert c.state.prompt_version == result.replies[0].text_version
    assert c.state.granted == frozenset()


# --- C02 and C12: consent only by an explicit act, recorded exactly ---------------------------


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
    result = c.send(typed)
    assert {ch.category for ch in result.changes} == BOTH
    assert all(ch.granted for ch in result.changes)
    # No quoted message: the evidence is the reply; the text is the prompt shown last.
    assert result.changes[0].text == render_prompt(catalog, language).shown_text
    assert "prompt_wamid" not in result.changes[0].evidence
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


@pytest.mark.parametrize("typed", ["sure, why not", "ok", "👍", "yes please send cakes"])
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


# --- C03: a click-to-WhatsApp ad is never consent ---------------------------------------------


@pytest.mark.parametrize("typed", ["yes", "Yes, subscribe me to offers", "نعم", "Hi!"])
def test_c03_message_from_an_ad_is_never_consent(typed: str, chat: ChatFactory) -> None:
    c = asked(chat)  # even with a live prompt on screen
    result = c.send(typed, from_ad=True)
    assert result.changes == ()
    assert purposes(result) == ["prompt"]
    assert c.state.stage is Stage.ASKED


def test_c03_button_from_an_ad_is_never_consent(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.tap("optin:yes", from_ad=True)
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c03_first_contact_from_an_ad_gets_the_prompt(chat: ChatFactory) -> None:
    c = chat()
    result = c.send("I saw your ad, tell me more", from_ad=True)
    assert purposes(result) == ["prompt"]
    assert c.state.stage is Stage.ASKED


def test_c03_stop_from_an_ad_is_honoured(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send("STOP", from_ad=True)
    assert {ch.category for ch in result.changes} == BOTH
    assert c.state.stage is Stage.STOPPED


def test_c03_c07_ad_message_after_stop_gets_nothing(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send("Hello from the ad", from_ad=True)
    assert result.replies == () and result.changes == ()


# --- C04: one category at a time --------------------------------------------------------------


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


# --- C05: keywords from every stage -----------------------------------------------------------

STAGE_SETUPS: dict[Stage, Callable[[ChatFactory], Chat]] = {
    Stage.NEW: lambda chat: chat(),
    Stage.ASKED: asked,
    Stage.CHOOSING: lambda chat: _choosing(chat),
    Stage.SUBSCRIBED: subscribed,
    Stage.DECLINED: lambda chat: _declined(chat),
    Stage.STOPPED: stopped,
}


def _choosing(chat: ChatFactory) -> Chat:
    c = asked(chat)
    c.tap("optin:choose")
    c.tap("cat:orders:yes")  # one granted, one still to ask
    return c


def _declined(chat: ChatFactory) -> Chat:
    c = asked(chat)
    c.tap("optin:no")
    return c


STOP_FORMS = [
    " stop ",
    "Stop!",
    "Ｓｔｏｐ",
    "إِلْغَاء",
    "ـإلغـاء",
    "\u200fالغاء\u200f",
    "الغاء الاشتراك",
    "OPT-OUT",
]


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", STOP_FORMS)
def test_c05_c07_stop_works_from_every_stage(stage: Stage, typed: str, chat: ChatFactory) -> None:
    c = STAGE_SETUPS[stage](chat)
    granted_before = c.state.granted
    result = c.send(typed)
    assert {ch.category for ch in result.changes} == granted_before
    assert all(not ch.granted for ch in result.changes)
    assert purposes(result) == ["stop"]
    assert c.state.stage is Stage.STOPPED
    assert c.state.granted == frozenset()


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", ["HELP", "info", "مساعدة", "المساعدة؟"])
def test_c05_c10_help_works_from_every_stage_and_changes_nothing(
    stage: Stage, typed: str, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.send(typed)
    assert purposes(result) == ["help"]
    assert result.changes == ()
    assert c.state.stage is before.stage
    assert c.state.granted == before.granted
    assert c.state.pending == before.pending


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", ["START", "ابدأ", "subscribe"])
def test_c05_c09_start_shows_the_prompt_from_every_stage_and_grants_nothing(
    stage: Stage, typed: str, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state.granted
    result = c.send(typed)
    assert purposes(result) == ["prompt"]
    assert result.changes == ()
    assert c.state.granted == before
    assert c.state.stage is Stage.ASKED


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", ["PREFERENCES", "settings", "الإعدادات", "تفضيلات"])
def test_c05_preferences_works_from_every_stage(
    stage: Stage, typed: str, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.send(typed)
    assert purposes(result) == ["preferences"]
    assert result.changes == ()
    assert (c.state.stage, c.state.granted) == (before.stage, before.granted)


# --- C06 --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "typed", ["we must stop this", "don't stop", "please stop sending", "لا أريد الإلغاء الآن"]
)
def test_c06_keyword_inside_a_sentence_changes_nothing(typed: str, chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send(typed)
    assert result.changes == ()
    assert c.state.granted == BOTH
    assert c.state.stage is Stage.SUBSCRIBED
    assert "stop" not in purposes(result)


# --- C07: STOP ---------------------------------------------------------------------------------


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


def test_c07_repeated_stop_adds_no_ledger_rows(chat: ChatFactory) -> None:
    c = stopped(chat)
    rows = len(c.ledger)
    result = c.send("stop")
    assert result.changes == ()
    assert len(c.ledger) == rows
    assert purposes(result) == ["stop"]  # their own request, answered once


@pytest.mark.parametrize(
    "message",
    [
        lambda c: c.send("hello?"),
        lambda c: c.send("yes"),
        lambda c: c.send("stop offers"),
        lambda c: c.tap("optin:no"),
        lambda c: c.tap("cat:offers:no"),
        lambda c: c.tap("some:other:button"),
        lambda c: c.media(),
        lambda c: c.media(InboundKind.REACTION),
        lambda c: c.media(InboundKind.UNSUPPORTED),
    ],
)
def test_c07_after_stop_nothing_is_sent(
    message: Callable[[Chat], StepResult], chat: ChatFactory
) -> None:
    c = stopped(chat)
    result = message(c)
    assert result.replies == ()
    assert result.changes == ()
    assert c.state.stage is Stage.STOPPED


def test_c07_many_messages_after_stop_stay_silent(chat: ChatFactory) -> None:
    c = stopped(chat)
    for _ in range(5):
        assert c.send("why?").replies == ()


def test_c07_yes_button_on_the_current_prompt_opts_in_again(chat: ChatFactory) -> None:
    c = stopped(chat)  # the prompt was shown minutes ago and is still current
    result = c.tap("optin:yes")
    assert {ch.category for ch in result.changes} == BOTH
    assert c.state.stage is Stage.SUBSCRIBED


def test_c07_yes_button_on_an_expired_prompt_after_stop_asks_again(chat: ChatFactory) -> None:
    c = stopped(chat)
    c.wait(timedelta(days=3))
    result = c.tap("optin:yes")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


# --- C08: STOP <category> ---------------------------------------------------------------------


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
    c = _choosing(chat)  # orders granted, offers about to be asked
    result = c.send("stop offers")
    assert result.changes == ()
    assert c.state.pending == ()
    assert c.state.stage is Stage.SUBSCRIBED


# --- C09: START --------------------------------------------------------------------------------


def test_c09_start_after_stop_shows_the_prompt_and_grants_nothing(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send("START")
    assert result.changes == ()
    assert purposes(result) == ["prompt"]
    assert c.state.granted == frozenset()
    assert c.state.stage is Stage.ASKED
    # Only the answer to that prompt grants.
    assert {ch.category for ch in c.tap("optin:yes").changes} == BOTH


# --- C10: HELP ---------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ["STOP", "PREFERENCES", "START"]),
        ("ar", ["توقف", "الإعدادات", "ابدأ"]),
    ],
)
def test_c10_help_names_company_support_categories_stop_and_preferences(
    language: str, words: list[str], chat: ChatFactory, catalog: Catalog
) -> None:
    state = DialogueState(
        stage=Stage.SUBSCRIBED, language=language, language_chosen=True, granted=BOTH
    )
    (reply,) = chat(state).send("HELP").replies
    assert "Nimbus Bakery" in reply.body
    assert "help@nimbus.example" in reply.body
    for category in catalog.categories:
        assert category.title[language] in reply.body
    for word in words:
        assert word in reply.body
    other_language = {"en": "العربية", "ar": "ENGLISH"}[language]
    assert other_language in reply.body


def test_c10_help_while_stopped_is_answered(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send("help")
    assert purposes(result) == ["help"]
    assert c.state.stage is Stage.STOPPED


def test_c10_help_for_a_single_language_company_offers_no_language_switch(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = chat(catalog=catalog_factory(languages=("en",)))
    (reply,) = c.send("HELP").replies
    assert "العربية" not in reply.body


# --- C11: language -----------------------------------------------------------------------------


def test_c11_arabic_writer_gets_arabic_and_replies_follow_their_writing(chat: ChatFactory) -> None:
    c = chat()
    (prompt,) = c.send("مرحبا، أريد أن أعرف المزيد").replies
    assert prompt.language == "ar"
    assert "العروض" in prompt.body
    assert [b.title for b in prompt.buttons] == ["نعم، الكل", "دعني أختار", "لا، شكرًا"]
    assert c.state.language == "ar"
    # Buttons and messages without letters keep the language of their last words.
    assert c.tap("optin:choose").replies[0].language == "ar"
    assert c.send("👍").replies[0].language == "ar"
    # Guessed, not chosen: when they write in Latin letters, the default answers.
    assert c.send("hmm").replies[0].language == "en"
    assert c.state.language == "en"


def test_c11_default_is_the_first_configured_language(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    assert chat().send("Hello").replies[0].language == "en"
    arabic_first = chat(catalog=catalog_factory(languages=("ar", "en")))
    assert arabic_first.send("Hello").replies[0].language == "ar"


def test_c11_chosen_language_wins_over_the_script_of_a_message(chat: ChatFactory) -> None:
    c = chat(DialogueState(language="en", language_chosen=True))
    assert c.send("مرحبا").replies[0].language == "en"


def test_c11_arabic_is_not_used_unless_configured(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = chat(catalog=catalog_factory(languages=("en",)))
    assert c.send("مرحبا").replies[0].language == "en"
    assert c.state.language != "ar"


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
    c = _choosing(chat)
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


# --- C13: Meta's marketing opt-out ---------------------------------------------------------------


def test_c13_meta_stop_withdraws_every_granted_marketing_category(catalog: Catalog) -> None:
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=BOTH)
    evidence = {"webhook": "user_preferences"}
    result = marketing_preference(state, "stop", catalog, NOW, evidence)
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == ("offers", False, ConsentSource.META)
    assert change.text == META_OPT_OUT_TEXT
    assert change.text_version == text_version(META_OPT_OUT_TEXT)
    assert change.occurred_at == NOW
    assert change.evidence == evidence
    assert result.state.granted == frozenset({"orders"})
    assert result.state.stage is Stage.SUBSCRIBED
    assert result.replies == ()


def test_c13_meta_stop_covers_every_marketing_category(catalog: Catalog) -> None:
    extra = Category(id="events", marketing=True, title={"en": "Events"}, description={})
    wide = replace(catalog, categories=(*catalog.categories, extra))
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"offers", "events"}))
    result = marketing_preference(state, "stop", wide, NOW, {})
    assert {ch.category for ch in result.changes} == {"offers", "events"}
    assert result.state.stage is Stage.DECLINED


def test_c13_meta_stop_without_marketing_consent_records_nothing(catalog: Catalog) -> None:
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"orders"}))
    result = marketing_preference(state, "stop", catalog, NOW, {})
    assert result.changes == ()
    assert result.state == state


def test_c13_the_stop_promotions_button_is_metas_opt_out_not_a_keyword(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.tap("Stop promotions", text="Stop promotions", context_wamid="wamid.TEMPLATE")
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == ("offers", False, ConsentSource.META)
    assert change.evidence == {"reply_wamid": c.last_in.wamid, "prompt_wamid": "wamid.TEMPLATE"}
    assert result.replies == ()
    # Typed, the same words are the customer's own STOP for that category.
    typed = subscribed(chat).send("Stop promotions")
    assert [ch.source for ch in typed.changes] == [ConsentSource.WHATSAPP]


def test_c13_meta_resume_is_not_consent(catalog: Catalog) -> None:
    state = DialogueState(stage=Stage.DECLINED)
    result = marketing_preference(state, "resume", catalog, NOW, {})
    assert result == StepResult(state=state)


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


def test_the_prompt_version_is_the_shown_prompts_version(catalog: Catalog) -> None:
    en, ar = (render_prompt(catalog, lang).text_version for lang in ("en", "ar"))
    assert en == text_version(render_prompt(catalog, "en").shown_text)
    assert en != ar
    # A language not offered falls back to the default one.
    assert render_prompt(catalog, "fr").text_version == en


# --- preferences ---------------------------------------------------------------------------------


def test_preferences_shows_each_category_on_or_off_with_a_change_button(chat: ChatFactory) -> None:
    c = chat(DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"orders"})))
    (reply,) = c.send("PREFERENCES").replies
    lines = reply.body.splitlines()
    assert any("Order updates" in line and line.endswith("on") for line in lines)
    assert any("Offers" in line and line.endswith("off") for line in lines)
    assert [b.id for b in reply.buttons] == ["optin:choose"]


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


# --- inputs with no transition -------------------------------------------------------------------


def test_unmatched_input_reprompts_twice_then_points_to_help_then_stays_quiet(
    chat: ChatFactory,
) -> None:
    c = asked(chat)
    assert purposes(c.send("what?")) == ["prompt"]
    assert purposes(c.send("huh")) == ["prompt"]
    limit = c.send("???")
    assert purposes(limit) == ["reprompt_limit"]
    assert "HELP" in limit.replies[0].body
    for _ in range(3):
        assert c.send("hello").replies == ()
    assert c.state.stage is Stage.ASKED
    # Still answerable: an explicit yes is consent, the prompt being current and live.
    assert len(c.send("yes").changes) == 2


def test_unmatched_input_while_choosing_repeats_the_same_question(chat: ChatFactory) -> None:
    c = _choosing(chat)
    (question,) = c.send("maybe").replies
    assert [b.id for b in question.buttons] == ["cat:offers:yes", "cat:offers:no"]
    assert c.state.reprompts == 1


def test_a_matched_input_resets_the_reprompt_count(chat: ChatFactory) -> None:
    c = asked(chat)
    c.send("what?")
    c.send("huh")
    c.send("HELP")
    assert purposes(c.send("hmm")) == ["prompt"]


def test_unknown_button_is_unmatched_input(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.tap("cat:cakes:yes")  # no such category
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


@pytest.mark.parametrize("setup", [subscribed, _declined])
def test_settled_contact_chatting_gets_one_pointer_to_help(
    setup: Callable[[ChatFactory], Chat], chat: ChatFactory
) -> None:
    c = setup(chat)
    before = c.state.stage
    first = c.send("thanks!")
    assert purposes(first) == ["fallback"]
    assert "HELP" in first.replies[0].body
    assert c.send("bye").replies == ()
    assert c.state.stage is before
    # A keyword resets it.
    c.send("help")
    assert purposes(c.send("ok")) == ["fallback"]


@pytest.mark.parametrize("kind", [InboundKind.MEDIA, InboundKind.REACTION, InboundKind.UNSUPPORTED])
@pytest.mark.parametrize("stage", [Stage.NEW, Stage.ASKED, Stage.CHOOSING, Stage.SUBSCRIBED])
def test_media_gets_a_polite_answer_and_keeps_the_stage(
    kind: InboundKind, stage: Stage, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.media(kind)
    assert purposes(result) == ["unreadable"]
    assert result.changes == ()
    assert c.state == before


def test_media_answer_is_in_the_contacts_language(chat: ChatFactory) -> None:
    c = chat(DialogueState(language="ar"))
    assert c.media().replies[0].language == "ar"


def test_every_signal_but_other_has_a_declared_transition() -> None:
    declared = {signal for _, signal in TRANSITIONS}
    # OTHER has no transition anywhere: it always takes the stage's explicit no-transition case.
    assert declared == set(Signal) - {Signal.OTHER}


# --- properties ----------------------------------------------------------------------------------

_settings = settings(suppress_health_check=[HealthCheck.function_scoped_fixture], max_examples=200)


@_settings
@given(text=st.text(max_size=40), stage=st.sampled_from(list(Stage)))
def test_c02_no_typed_message_but_a_yes_ever_grants(
    text: str, stage: Stage, catalog: Catalog
) -> None:
    state = DialogueState(
        stage=stage,
        pending=("offers",) if stage is Stage.CHOOSING else (),
        prompt_version=render_prompt(catalog, "en").text_version,
        asked_at=NOW,
    )
    event = Inbound(kind=InboundKind.TEXT, wamid="w", timestamp=NOW, text=text)
    result = step(state, event, catalog, NOW)
    match = match_keyword(text, catalog)
    if match is None or match.intent is not Intent.YES:
        assert not any(ch.granted for ch in result.changes)
    assert len(result.replies) <= 1


@_settings
@given(
    text=st.one_of(st.none(), st.text(max_size=20)),
    reply_id=st.one_of(
        st.none(), st.sampled_from(["optin:yes", "cat:orders:yes", "cat:offers:yes"])
    ),
    stage=st.sampled_from(list(Stage)),
)
def test_c03_nothing_from_an_ad_ever_grants(
    text: str | None, reply_id: str | None, stage: Stage, catalog: Catalog
) -> None:
    prompt = render_prompt(catalog, "en")
    state = DialogueState(stage=stage, prompt_version=prompt.text_version, asked_at=NOW)
    event = Inbound(
        kind=InboundKind.BUTTON if reply_id else InboundKind.TEXT,
        wamid="w",
        timestamp=NOW,
        text=text,
        reply_id=reply_id,
        from_ad=True,
        context_text_version=prompt.text_version,
    )
    result = step(state, event, catalog, NOW)
    assert not any(ch.granted for ch in result.changes)


def test_replies_are_well_formed_reply_objects(chat: ChatFactory) -> None:
    c = subscribed(chat)
    for _, reply in c.sent:
        assert isinstance(reply, Reply)
        assert reply.language in ("en", "ar")
        assert len(reply.buttons) <= 3
