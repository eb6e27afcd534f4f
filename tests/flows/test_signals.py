"""What a message amounts to: keywords, our buttons, ads, and the contact's language (C06, C11)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flows.catalog import Catalog
from flows.model import DialogueState, Stage

from .conftest import BOTH, ChatFactory, asked, purposes, subscribed

# --- C06: a keyword is the whole message ---------------------------------------------------------


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


# --- buttons that are not ours -------------------------------------------------------------------


def test_unknown_button_is_unmatched_input(chat: ChatFactory) -> None:
    c = asked(chat)
    result = c.tap("cat:cakes:yes")  # no such category
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


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
