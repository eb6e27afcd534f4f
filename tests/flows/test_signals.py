"""What a message amounts to: keywords, our buttons, ads, and the contact's language (C06, C11)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from flows.catalog import Catalog
from flows.model import DialogueState, Inbound, InboundKind, Stage
from flows.signals import (
    DOI_NO,
    DOI_YES,
    HONOURED_FROM_AD,
    OPTIN_CHOOSE,
    OPTIN_NO,
    OPTIN_YES,
    Signal,
    category_button_id,
    classify,
)

from .conftest import BOTH, NOW, ChatFactory, asked, purposes, subscribed

# --- C06: a keyword is the whole message ---------------------------------------------------------


# "please stop sending" was listed here until C21: in the customer's own words it is a stop now
# (tests/flows/test_stop_words.py).
@pytest.mark.parametrize("typed", ["we must stop this", "don't stop", "لا أريد الإلغاء الآن"])
def test_c06_keyword_inside_a_sentence_changes_nothing(typed: str, chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send(typed)
    assert result.changes == ()
    assert c.state.granted == BOTH
    assert c.state.stage is Stage.SUBSCRIBED
    assert "stop" not in purposes(result)


# --- buttons that are not ours -------------------------------------------------------------------


def test_unknown_button_is_unmatched_input(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.tap("cat:cakes:yes")  # no such category
    assert result.changes == ()
    assert purposes(result) == ["hint"]  # the prompt above still waits for an answer


# --- C11: the contact's language -----------------------------------------------------------------


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


def test_media_answer_is_in_the_contacts_language(chat: ChatFactory) -> None:
    c = chat(DialogueState(language="ar"))
    assert c.media().replies[0].language == "ar"


# --- classify: our buttons, Meta's button, and what an ad may still say --------------------------


def _tap(reply_id: str, *, text: str | None = None) -> Inbound:
    return Inbound(
        kind=InboundKind.BUTTON, wamid="wamid.in", timestamp=NOW, reply_id=reply_id, text=text
    )


def _typed(text: str) -> Inbound:
    return Inbound(kind=InboundKind.TEXT, wamid="wamid.in", timestamp=NOW, text=text)


@pytest.mark.parametrize(
    ("reply_id", "signal", "category_id"),
    [
        (OPTIN_YES, Signal.ALL_YES, None),
        (OPTIN_CHOOSE, Signal.CHOOSE, None),
        (OPTIN_NO, Signal.ALL_NO, None),
        ("cat:offers:yes", Signal.CATEGORY_YES, "offers"),
        ("cat:orders:no", Signal.CATEGORY_NO, "orders"),
        (DOI_YES, Signal.DOI_YES, None),
        (DOI_NO, Signal.DOI_NO, None),
    ],
)
def test_our_button_ids_are_their_signals(
    reply_id: str, signal: Signal, category_id: str | None, catalog: Catalog
) -> None:
    assert classify(_tap(reply_id, text="Yes"), catalog) == (signal, category_id, None)


def test_category_button_ids_name_the_category(catalog: Catalog) -> None:
    assert category_button_id("offers", True) == "cat:offers:yes"
    assert category_button_id("offers", False) == "cat:offers:no"
    assert classify(_tap("cat:cakes:yes"), catalog)[0] is Signal.OTHER  # no such category


@pytest.mark.parametrize("reply_id", ["Stop promotions", "STOP PROMOTIONS", " stop promotions! "])
def test_c13_the_stop_promotions_tap_is_metas_opt_out(reply_id: str, catalog: Catalog) -> None:
    assert classify(_tap(reply_id), catalog) == (Signal.STOP_PROMOTIONS, None, None)
    # A template button without a payload is read by its title.
    assert classify(_tap("", text=reply_id), catalog)[0] is Signal.STOP_PROMOTIONS


def test_c08_typed_stop_promotions_is_the_customers_own_stop_for_offers(catalog: Catalog) -> None:
    assert classify(_typed("Stop promotions"), catalog) == (Signal.STOP_CATEGORY, "offers", None)


def test_a_template_button_carrying_a_keyword_is_that_keyword(catalog: Catalog) -> None:
    assert classify(_tap("STOP"), catalog)[0] is Signal.STOP_ALL
    assert classify(_tap("some-payload", text="HELP"), catalog)[0] is Signal.HELP


@pytest.mark.parametrize("kind", [InboundKind.MEDIA, InboundKind.UNSUPPORTED])
def test_what_we_cannot_read_is_unreadable(kind: InboundKind, catalog: Catalog) -> None:
    event = Inbound(kind=kind, wamid="wamid.in", timestamp=NOW)
    assert classify(event, catalog) == (Signal.UNREADABLE, None, None)


@pytest.mark.parametrize("kind", [InboundKind.REACTION, InboundKind.NOTICE, InboundKind.FLOW])
def test_c33_a_reaction_or_a_notice_is_not_an_answer(kind: InboundKind, catalog: Catalog) -> None:
    event = Inbound(kind=kind, wamid="wamid.in", timestamp=NOW)
    assert classify(event, catalog) == (Signal.IGNORED, None, None)


def test_c33_a_welcome_request_is_its_own_signal(catalog: Catalog) -> None:
    event = Inbound(kind=InboundKind.WELCOME, wamid="wamid.in", timestamp=NOW)
    assert classify(event, catalog) == (Signal.WELCOME, None, None)


@pytest.mark.parametrize("where", [{"in_group": True}, {"edited": True}])
@pytest.mark.parametrize(
    ("text", "signal"),
    [("STOP", Signal.STOP_ALL), ("stop offers", Signal.STOP_CATEGORY), ("yes", Signal.IGNORED)],
)
def test_c31_c32_a_group_message_or_an_edit_only_withdraws(
    where: dict[str, bool], text: str, signal: Signal, catalog: Catalog
) -> None:
    event = Inbound(kind=InboundKind.TEXT, wamid="wamid.in", timestamp=NOW, text=text, **where)
    assert classify(event, catalog)[0] is signal
    for word in ("START", "HELP", "PREFERENCES"):
        quiet = Inbound(kind=InboundKind.TEXT, wamid="w", timestamp=NOW, text=word, **where)
        assert classify(quiet, catalog)[0] is Signal.IGNORED


@pytest.mark.parametrize(
    ("event", "signal"),
    [
        (_typed("STOP"), Signal.STOP_ALL),
        (_typed("stop offers"), Signal.STOP_CATEGORY),
        (_typed("START"), Signal.START),
        (_typed("HELP"), Signal.HELP),
        (_typed("PREFERENCES"), Signal.PREFERENCES),
        (_typed("العربية"), Signal.LANGUAGE),
        (_tap("Stop promotions"), Signal.STOP_PROMOTIONS),
        (_tap(DOI_NO), Signal.DOI_NO),
    ],
)
def test_c03_from_an_ad_what_grants_nothing_is_honoured(
    event: Inbound, signal: Signal, catalog: Catalog
) -> None:
    assert classify(replace(event, from_ad=True), catalog) == classify(event, catalog)
    assert classify(event, catalog)[0] is signal


@pytest.mark.parametrize(
    "event",
    [
        _typed("yes"),
        _typed("نعم"),
        _typed("no"),
        _typed("Hi, I saw your ad"),
        _tap(OPTIN_YES),
        _tap(OPTIN_CHOOSE),
        _tap(OPTIN_NO),
        _tap("cat:offers:yes"),
        _tap("cat:offers:no"),
        _tap(DOI_YES),
        Inbound(kind=InboundKind.MEDIA, wamid="wamid.in", timestamp=NOW),
    ],
)
def test_c03_from_an_ad_anything_else_is_from_ad(event: Inbound, catalog: Catalog) -> None:
    assert classify(replace(event, from_ad=True), catalog) == (Signal.FROM_AD, None, None)


def test_c03_nothing_that_can_grant_is_honoured_from_an_ad() -> None:
    grants = {Signal.ALL_YES, Signal.CHOOSE, Signal.CATEGORY_YES, Signal.DOI_YES, Signal.YES}
    assert grants.isdisjoint(HONOURED_FROM_AD)
