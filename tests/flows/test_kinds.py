"""Messages that are not a private answer: groups (C31), edits (C32), notices and welcomes (C33)."""

from __future__ import annotations

import pytest

from flows.model import InboundKind, Stage

from .conftest import BOTH, STAGE_SETUPS, ChatFactory, asked, purposes, stopped, subscribed


@pytest.mark.parametrize("text", ["yes", "hello", "START", "HELP", "PREFERENCES"])
def test_c31_a_group_message_never_grants_nor_gets_an_answer(text: str, chat: ChatFactory) -> None:
    c = asked(chat)
    before = c.state
    result = c.send(text, in_group=True)
    assert result.replies == () and result.changes == ()
    assert c.state.stage is before.stage and c.state.granted == frozenset()


def test_c31_a_group_message_from_a_new_contact_starts_nothing(chat: ChatFactory) -> None:
    c = chat()
    result = c.send("hello", in_group=True)
    assert result.replies == ()
    assert c.state.stage is Stage.NEW


def test_c31_a_stop_in_a_group_withdraws_that_participant_silently(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send("STOP", in_group=True)
    assert result.replies == ()
    assert {change.category for change in result.changes} == BOTH
    assert not any(change.granted for change in result.changes)
    assert c.state.stage is Stage.STOPPED


@pytest.mark.parametrize("text", ["مرحبا بالجميع", "إلغاء"])
def test_c31_a_group_message_says_nothing_of_the_contacts_language(
    text: str, chat: ChatFactory
) -> None:
    c = subscribed(chat)
    assert c.state.language == "en"
    c.send(text, in_group=True)
    assert c.state.language == "en"


@pytest.mark.parametrize("text", ["yes", "START", "hello"])
def test_c32_an_edit_never_grants(text: str, chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.send(text, edited=True)
    assert result.replies == () and result.changes == ()
    assert c.state.granted == frozenset()


def test_c32_an_edit_into_stop_withdraws_with_one_confirmation(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send("STOP", edited=True)
    assert purposes(result) == ["stop"]
    assert {change.category for change in result.changes} == BOTH
    assert c.state.stage is Stage.STOPPED


def test_c32_an_edit_into_stop_a_category_withdraws_only_it(chat: ChatFactory) -> None:
    c = subscribed(chat)
    result = c.send("stop offers", edited=True)
    assert [(change.category, change.granted) for change in result.changes] == [("offers", False)]


@pytest.mark.parametrize("stage", [Stage.NEW, Stage.ASKED, Stage.CHOOSING])
def test_c33_a_welcome_request_gets_the_prompt(stage: Stage, chat: ChatFactory) -> None:
    c = STAGE_SETUPS[stage](chat)
    result = c.media(InboundKind.WELCOME)
    assert purposes(result) == ["prompt"]
    assert result.changes == ()
    assert c.state.stage is Stage.ASKED


@pytest.mark.parametrize("stage", [Stage.SUBSCRIBED, Stage.DECLINED])
def test_c33_a_welcome_request_after_choosing_shows_the_choices(
    stage: Stage, chat: ChatFactory
) -> None:
    c = STAGE_SETUPS[stage](chat)
    before = c.state
    result = c.media(InboundKind.WELCOME)
    assert purposes(result) == ["preferences"]
    assert result.changes == ()
    assert c.state.stage is before.stage and c.state.granted == before.granted


def test_c33_a_welcome_request_after_stop_stays_silent(chat: ChatFactory) -> None:
    c = stopped(chat)
    assert c.media(InboundKind.WELCOME).replies == ()


def test_the_polite_answer_comes_again_once_a_new_question_is_asked(chat: ChatFactory) -> None:
    c = asked(chat)
    assert purposes(c.media()) == ["unreadable"]
    assert c.media().replies == ()
    c.tap("optin:choose")  # the first category question: a new question on screen
    assert purposes(c.media()) == ["unreadable"]
    assert c.media().replies == ()
    c.send("START")  # the prompt again
    assert purposes(c.media()) == ["unreadable"]
