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
