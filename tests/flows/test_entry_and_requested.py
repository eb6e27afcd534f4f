"""Entry points and choices made on the hosted page, through step(): a link's prefilled text is
never consent and its tag follows the grants that answer the prompt (C02, C03); a choice made
on the web is granted only by the doi:yes tap, exactly as chosen, with source web (C28)."""

from __future__ import annotations

import pytest

from flows.entry import entry_point_in, is_tag, prefilled_text
from flows.model import DialogueState, InboundKind, RequestedOptIn, Stage
from flows.policy import ConsentSource, Purpose
from flows.signals import DOI_NO, DOI_YES, Signal, classify
from flows.versioning import text_version

from .conftest import BOTH, NOW, ChatFactory, purposes, stopped, subscribed

PAGE_TEXT = "Nimbus Bakery on WhatsApp\n[x] Order updates\n[x] Offers\nHow we handle your data"
TAGGED = "Hello Nimbus Bakery! (ref: poster-42)"


@pytest.mark.parametrize("language", ["en", "ar"])
def test_the_prefilled_text_carries_the_tag_in_every_language(language: str) -> None:
    text = prefilled_text("Nimbus Bakery", language, "poster-42")
    assert "Nimbus Bakery" in text
    assert entry_point_in(text) == "poster-42"
    assert entry_point_in(prefilled_text("Nimbus Bakery", language, None)) is None


@pytest.mark.parametrize(
    ("value", "ok"),
    [("poster-42", True), ("ivr_main.v2", True), ("-x", False), ("a b", False), ("x" * 65, False)],
)
def test_what_a_tag_may_be(value: str, ok: bool) -> None:
    assert is_tag(value) is ok


def test_c02_a_chat_opened_from_a_link_is_asked_and_nothing_is_granted(chat: ChatFactory) -> None:
    c = chat()
    result = c.send(TAGGED)
    assert result.changes == ()
    assert purposes(result) == [Purpose.PROMPT]
    assert c.state.stage is Stage.ASKED
    assert c.state.entry_point == "poster-42"


def test_the_grant_answering_that_prompt_records_the_tag(chat: ChatFactory) -> None:
    c = chat()
    c.send(TAGGED)
    result = c.tap("optin:yes")
    assert {change.category for change in result.changes} == BOTH
    assert all(change.evidence["entry_point"] == "poster-42" for change in result.changes)
    assert all(change.source is ConsentSource.WHATSAPP for change in result.changes)
    assert c.state.entry_point is None  # settled: later decisions are not the poster's


def test_choosing_one_by_one_records_the_tag_on_each_answer(chat: ChatFactory) -> None:
    c = chat()
    c.send(TAGGED)
    c.tap("optin:choose")
    first = c.tap("cat:orders:yes").changes
    second = c.tap("cat:offers:no").changes
    assert [ch.evidence["entry_point"] for ch in (*first, *second)] == ["poster-42"] * 2


@pytest.mark.parametrize("edited", ["yes (ref: poster-42)", "نعم (ref: poster-42)"])
def test_c02_a_prefilled_text_edited_into_a_yes_is_still_not_consent(
    chat: ChatFactory, edited: str
) -> None:
    c = chat()
    c.send("Hello")  # the prompt is showing
    result = c.send(edited)
    assert result.changes == ()
    assert purposes(result) == [Purpose.PROMPT]


def test_c03_a_prefilled_text_from_an_ad_is_never_consent(chat: ChatFactory) -> None:
    c = chat()
    result = c.send(TAGGED, from_ad=True)
    assert result.changes == ()
    assert purposes(result) == [Purpose.PROMPT]
    assert c.state.entry_point is None
    event = c.last_in
    assert event is not None and classify(event, c.catalog)[0] is Signal.FROM_AD


def test_a_stop_keyword_still_wins_over_the_link(chat: ChatFactory) -> None:
    c = subscribed(chat)
    assert (
        classify(
            c.last_in.__class__(kind=InboundKind.TEXT, wamid="w", timestamp=NOW, text="STOP"),
            c.catalog,
        )[0]
        is Signal.STOP_ALL
    )


def test_someone_who_stopped_and_scans_a_poster_is_asked_again(chat: ChatFactory) -> None:
    c = stopped(chat)
    result = c.send(TAGGED)
    assert result.changes == ()
    assert purposes(result) == [Purpose.PROMPT]
    assert c.state.granted == frozenset()


def requested(chat: ChatFactory, categories: tuple[str, ...], **state: object):  # type: ignore[no-untyped-def]
    request = RequestedOptIn(
        categories=categories,
        text=PAGE_TEXT,
        evidence={"entry_point": "flyer", "client": "c1ie47"},
    )
    return chat(DialogueState(requested=request, **state))  # type: ignore[arg-type]


def test_c28_doi_yes_grants_exactly_the_chosen_categories_with_source_web(
    chat: ChatFactory,
) -> None:
    c = requested(chat, ("orders",))
    result = c.tap(DOI_YES, text="Yes", context_wamid="wamid.TEMPLATE", context_sent_at=NOW)
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == ("orders", True, ConsentSource.WEB)
    assert (change.text, change.text_version) == (PAGE_TEXT, text_version(PAGE_TEXT))
    assert change.occurred_at == NOW
    assert change.evidence == {
        "entry_point": "flyer",
        "client": "c1ie47",
        "reply_wamid": c.last_in.wamid,
        "prompt_wamid": "wamid.TEMPLATE",
    }
    assert c.state.granted == frozenset({"orders"})
    assert c.state.requested is None
    assert purposes(result) == [Purpose.CONFIRMATION]
    assert "Order updates" in result.replies[0].body and "Offers" not in result.replies[0].body


def test_c28_doi_no_on_a_web_choice_grants_nothing_and_records_nothing(
    chat: ChatFactory,
) -> None:
    c = requested(chat, ("orders", "offers"))
    result = c.tap(DOI_NO, text="No")
    assert result.changes == ()
    assert c.state.granted == frozenset()
    assert c.state.requested is None


def test_c28_without_the_tap_a_web_choice_is_never_consent(chat: ChatFactory) -> None:
    c = requested(chat, ("orders", "offers"))
    for words in ("yes", "Hello"):  # the first is no answer: no question was showing
        assert c.send(words).changes == ()
    assert c.state.granted == frozenset()
    assert c.state.requested is not None


def test_c03_a_doi_yes_from_an_ad_does_not_grant_a_web_choice(chat: ChatFactory) -> None:
    c = requested(chat, ("orders",))
    assert c.tap(DOI_YES, text="Yes", from_ad=True).changes == ()
    assert c.state.granted == frozenset()
