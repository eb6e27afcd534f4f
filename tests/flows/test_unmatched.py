"""Inputs with no transition: a one-line hint while a question is open, one pointer to HELP
when settled, a polite answer to what cannot be read; never a loop."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from flows.model import InboundKind, Stage

from .conftest import (
    STAGE_SETUPS,
    Chat,
    ChatFactory,
    asked,
    choosing,
    declined,
    purposes,
    stop_asked,
    subscribed,
)


def test_unmatched_input_gets_a_hint_twice_then_points_to_help_then_stays_quiet(
    chat: ChatFactory,
) -> None:
    c = asked(chat)
    # One line, the prompt being still on screen above it; not the whole prompt again.
    (hint,) = c.send("what?").replies
    assert hint.purpose == "hint" and hint.buttons == ()
    assert "YES" in hint.body and "NO" in hint.body and "\n" not in hint.body
    assert purposes(c.send("huh")) == ["hint"]
    limit = c.send("???")
    assert purposes(limit) == ["reprompt_limit"]
    assert "HELP" in limit.replies[0].body
    for _ in range(3):
        assert c.send("hello").replies == ()
    assert c.state.stage is Stage.ASKED
    # Still answerable: an explicit yes is consent, the prompt being current and live.
    assert len(c.send("yes").changes) == 2


def test_unmatched_input_while_choosing_gets_a_hint_and_keeps_the_question(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)
    assert purposes(c.send("maybe")) == ["hint"]
    assert c.state.reprompts == 1
    assert c.state.pending == ("offers",)
    # The question above the hint still answers.
    assert [(ch.category, ch.granted) for ch in c.tap("cat:offers:yes").changes] == [
        ("offers", True)
    ]


def test_a_matched_input_resets_the_reprompt_count(chat: ChatFactory) -> None:
    c = asked(chat)
    c.send("what?")
    c.send("huh")
    c.send("HELP")
    assert purposes(c.send("hmm")) == ["hint"]


@pytest.mark.parametrize("setup", [subscribed, declined])
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


@pytest.mark.parametrize("kind", [InboundKind.REACTION, InboundKind.NOTICE])
@pytest.mark.parametrize("stage", [Stage.NEW, Stage.ASKED, Stage.CHOOSING, Stage.SUBSCRIBED])
def test_c33_a_reaction_or_a_notice_is_no_answer_and_gets_none(
    kind: InboundKind, stage: Stage, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.media(kind)
    assert result.replies == () and result.changes == ()
    assert c.state == before


@pytest.mark.parametrize("kind", [InboundKind.MEDIA, InboundKind.UNSUPPORTED])
@pytest.mark.parametrize("stage", [Stage.NEW, Stage.ASKED, Stage.CHOOSING, Stage.SUBSCRIBED])
def test_media_gets_a_polite_answer_and_keeps_the_stage(
    kind: InboundKind, stage: Stage, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.media(kind)
    assert purposes(result) == ["unreadable"]
    assert result.changes == ()
    # Only the note of which question was answered politely changes.
    assert replace(c.state, unreadable_for=None) == replace(before, unreadable_for=None)
    # At most once per open question: more pictures get nothing more.
    assert c.media(kind).replies == ()
    assert c.media(InboundKind.MEDIA).replies == ()


def two_hints_then_the_pointer(c: Chat) -> None:
    assert purposes(c.send("hmm")) == ["hint"]
    assert purposes(c.send("huh")) == ["hint"]
    assert purposes(c.send("???")) == ["reprompt_limit"]
    assert c.send("hello?").replies == ()


QUESTIONS: dict[str, Callable[[ChatFactory], Chat]] = {
    "the prompt": asked,
    "a category question": choosing,
    "the stop question": stop_asked,
    "the prompt under HELP": lambda chat: _after(asked(chat), "HELP"),
    "a category question under HELP": lambda chat: _after(choosing(chat), "HELP"),
    "the stop question under HELP": lambda chat: _after(stop_asked(chat), "HELP"),
    "the prompt in another language": lambda chat: _after(asked(chat), "ARABIC"),
    "the stop question in another language": lambda chat: _after(stop_asked(chat), "ARABIC"),
    "the prompt after PREFERENCES": lambda chat: _after(asked(chat), "PREFERENCES"),
    "a category question after a stop of another": lambda chat: _after(
        choosing(chat), "STOP orders"
    ),
    "the prompt after an old 'change nothing' tap": lambda chat: _tapped(
        asked(chat), "stopask:keep"
    ),
}


def _tapped(c: Chat, reply_id: str) -> Chat:
    c.tap(reply_id)
    return c


def _after(c: Chat, typed: str) -> Chat:
    c.send(typed)
    return c


@pytest.mark.parametrize("question", list(QUESTIONS))
def test_every_question_asked_gets_two_hints_then_one_pointer_to_help(
    question: str, chat: ChatFactory
) -> None:
    two_hints_then_the_pointer(QUESTIONS[question](chat))


def test_a_question_asked_again_in_their_new_language_counts_as_a_hint(chat: ChatFactory) -> None:
    c = chat()
    c.send("مرحبا")
    (again,) = c.send("sorry, what is this?").replies
    assert again.purpose == "prompt"
    assert purposes(c.send("hmm")) == ["hint"]
    assert purposes(c.send("huh")) == ["reprompt_limit"]  # never a loop, in any language


SETTLED_ACTIONS: dict[str, Callable[[Chat], object]] = {
    "HELP": lambda c: c.send("HELP"),
    "PREFERENCES": lambda c: c.send("PREFERENCES"),
    "START while subscribed": lambda c: c.send("START"),
    "a language": lambda c: c.send("ARABIC"),
    "STOP for one category": lambda c: c.send("STOP offers"),
    "no to the stop question": lambda c: c.tap("stopask:keep"),
}


@pytest.mark.parametrize("action", list(SETTLED_ACTIONS))
def test_anything_understood_earns_a_settled_contact_the_pointer_to_help_again(
    action: str, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    assert purposes(c.send("thanks!")) == ["fallback"]
    assert c.send("bye").replies == ()
    SETTLED_ACTIONS[action](c)
    assert c.state.stage is Stage.SUBSCRIBED
    assert purposes(c.send("see you")) == ["fallback"]


@pytest.mark.parametrize("setup", [asked, choosing, stop_asked])
def test_each_question_asked_again_in_arabic_counts_toward_the_limit(
    setup: Callable[[ChatFactory], Chat], chat: ChatFactory
) -> None:
    c = setup(chat)
    english = c.state.prompt_version
    (again,) = c.send("شو هاد").replies  # not understood, and in Arabic: the question in Arabic
    assert again.language == "ar" and c.state.prompt_version != english
    assert purposes(c.send("ما فهمت")) == ["hint"]
    assert purposes(c.send("???")) == ["reprompt_limit"]


def test_a_contact_who_needed_a_hint_and_then_answered_gets_the_pointer_to_help_later(
    chat: ChatFactory,
) -> None:
    c = asked(chat)
    assert purposes(c.send("hmm")) == ["hint"]
    c.send("yes")
    assert c.state.stage is Stage.SUBSCRIBED
    assert purposes(c.send("thanks!")) == ["fallback"]
