"""C05: every word of the contract's keyword table (CONTRACT section 4), typed in every stage of the
dialogue, has its intent's effect: stop (C07), stop one category (C08), start (C09), help (C10)
and preferences. Written as listed and as customers type it (lower case, padded, punctuated)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flows import texts
from flows.catalog import Catalog
from flows.keywords import Intent
from flows.model import DialogueState, Stage
from flows.normalise import is_arabic
from flows.policy import ConsentSource
from flows.render import render_prompt

from .conftest import NOW, Chat, build_catalog
from .test_keywords import CONTRACT_TABLE

ChatFactory = Callable[..., Chat]
COMPANY = "Nimbus Bakery"


def contract_words(intent: Intent) -> tuple[str, ...]:
    """The contract's table, written out once in test_keywords, by intent."""
    return tuple(word for word, listed in CONTRACT_TABLE if listed is intent)


# The dialogue must honour each of these from every stage.
STOP_ALL_WORDS = contract_words(Intent.STOP_ALL)
STOP_CATEGORY_PREFIXES = ("STOP", "إيقاف")  # followed by a category keyword or title
START_WORDS = contract_words(Intent.START)
HELP_WORDS = contract_words(Intent.HELP)
PREFERENCES_WORDS = contract_words(Intent.PREFERENCES)

# What HELP must tell, in each language: how to stop, to change choices, to start again.
HELP_INSTRUCTIONS = {"en": ("STOP", "PREFERENCES", "START"), "ar": ("توقف", "الإعدادات", "ابدأ")}
START_WORD = {"en": "START", "ar": "ابدأ"}


def written_forms(words: tuple[str, ...]) -> list[str]:
    """Each word as listed, and as typed on a phone: lower case, stray spaces, an exclamation."""
    return [form for word in words for form in (word, f"  {word.casefold()}! ")]


def stop_category_forms(catalog: Catalog) -> list[tuple[str, str]]:
    """(typed, category id) for each prefix followed by each keyword and title of a category."""
    forms: list[tuple[str, str]] = []
    for category in catalog.categories:
        terms = dict.fromkeys((*category.keywords, *category.title.values()))
        for prefix in STOP_CATEGORY_PREFIXES:
            for term in terms:
                forms += [(typed, category.id) for typed in written_forms((f"{prefix} {term}",))]
    return list(dict.fromkeys(forms))  # "offers" and "Offers" are typed alike in lower case


def language_of(typed: str) -> str:
    """C11: the reply is in Arabic when the customer writes in Arabic, else the default."""
    return "ar" if is_arabic(typed) else "en"


# --- one contact in each stage ------------------------------------------------------------------


def _new(chat: ChatFactory) -> Chat:
    return chat()


def _asked(chat: ChatFactory) -> Chat:
    c = chat()
    c.send("Hello")
    return c


def _choosing(chat: ChatFactory) -> Chat:
    c = _asked(chat)
    c.tap("optin:choose")
    c.tap("cat:orders:yes")  # one category granted, the other still to be asked
    return c


def _subscribed(chat: ChatFactory) -> Chat:
    c = _asked(chat)
    c.tap("optin:yes")
    return c


def _declined(chat: ChatFactory) -> Chat:
    c = _asked(chat)
    c.tap("optin:no")
    return c


def _stopped(chat: ChatFactory) -> Chat:
    c = _subscribed(chat)
    c.send("STOP")
    return c


def _stop_asked(chat: ChatFactory) -> Chat:
    c = _subscribed(chat)
    c.send("too many messages")  # may be asking to stop: the one-tap question is open
    return c


SETUPS: dict[Stage, Callable[[ChatFactory], Chat]] = {
    Stage.NEW: _new,
    Stage.ASKED: _asked,
    Stage.CHOOSING: _choosing,
    Stage.SUBSCRIBED: _subscribed,
    Stage.DECLINED: _declined,
    Stage.STOPPED: _stopped,
    Stage.STOP_ASKED: _stop_asked,
}
GRANTED_IN: dict[Stage, frozenset[str]] = {
    Stage.NEW: frozenset(),
    Stage.ASKED: frozenset(),
    Stage.CHOOSING: frozenset({"orders"}),
    Stage.SUBSCRIBED: frozenset({"orders", "offers"}),
    Stage.DECLINED: frozenset(),
    Stage.STOPPED: frozenset(),
    Stage.STOP_ASKED: frozenset({"orders", "offers"}),
}
# The question open in a stage, which HELP shows again under the help.
OPEN_QUESTION: dict[Stage, str] = {
    Stage.ASKED: "prompt",
    Stage.CHOOSING: "category_prompt",
    Stage.STOP_ASKED: "stop_question",
}


def in_stage(stage: Stage, chat: ChatFactory) -> Chat:
    c = SETUPS[stage](chat)
    assert c.state.stage is stage
    assert c.state.granted == GRANTED_IN[stage]
    return c


def test_c05_every_stage_of_the_dialogue_is_covered() -> None:
    assert set(SETUPS) == set(Stage) == set(GRANTED_IN)


# --- stop everything (C07) ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", written_forms(STOP_ALL_WORDS))
def test_c05_c07_every_stop_word_withdraws_everything_from_every_stage(
    stage: Stage, typed: str, chat: ChatFactory, catalog: Catalog
) -> None:
    c = in_stage(stage, chat)
    before = c.state
    result = c.send(typed)
    language = language_of(typed)

    if stage is Stage.STOPPED:
        # Nothing left to withdraw: the first STOP's one confirmation stands alone (C07).
        assert result.replies == () and result.changes == ()
        assert (c.state.stage, c.state.granted) == (Stage.STOPPED, frozenset())
        return
    # One withdrawal row per category granted until now, in the customer's own words.
    withdrawn = [(cid, False) for cid in catalog.category_ids if cid in before.granted]
    assert [(ch.category, ch.granted) for ch in result.changes] == withdrawn
    assert all(ch.source is ConsentSource.WHATSAPP and ch.text == typed for ch in result.changes)
    assert c.state.granted == frozenset()
    assert c.state.stage is Stage.STOPPED
    assert c.state.pending == ()
    # Exactly one confirmation, naming the company and how to start again.
    (reply,) = result.replies
    assert (reply.purpose, reply.language, reply.buttons) == ("stop", language, ())
    assert reply.body == texts.text(language, "stop", company=COMPANY)
    assert COMPANY in reply.body and START_WORD[language] in reply.body
    # Then silence until they opt in again.
    assert c.send("hello?").replies == ()


# --- stop one category (C08) --------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize(("typed", "category_id"), stop_category_forms(build_catalog()))
def test_c05_c08_every_stop_category_form_withdraws_only_that_category_from_every_stage(
    stage: Stage, typed: str, category_id: str, chat: ChatFactory, catalog: Catalog
) -> None:
    c = in_stage(stage, chat)
    before = c.state
    result = c.send(typed)
    language = language_of(typed)
    category = catalog.category(category_id)
    assert category is not None

    if stage is Stage.STOPPED:
        # Everything is already withdrawn, and after STOP nothing is sent (C07).
        assert result.replies == () and result.changes == ()
        assert (c.state.stage, c.state.granted) == (Stage.STOPPED, frozenset())
        return

    # A row only when that category was granted; every other category stays as it was.
    if category_id in before.granted:
        (change,) = result.changes
        assert (change.category, change.granted, change.text) == (category_id, False, typed)
        assert change.source is ConsentSource.WHATSAPP
    else:
        assert result.changes == ()
    assert c.state.granted == before.granted - {category_id}
    # Nor is that category asked about any more while choosing; a stop answers the question
    # whether they meant to stop, so what it offered is no longer pending either.
    pending = tuple(p for p in before.pending if p != category_id)
    assert c.state.pending == (() if before.stage is Stage.STOP_ASKED else pending)
    assert c.state.stage is expected_stage_after_stopping_one(before, pending, c.state.granted)
    (reply,) = result.replies
    assert (reply.purpose, reply.language, reply.buttons) == ("stop_category", language, ())
    title = category.title_in(language)
    assert reply.body == texts.text(language, "stop_category", company=COMPANY, title=title)
    assert COMPANY in reply.body and title in reply.body


def expected_stage_after_stopping_one(
    before: DialogueState, pending: tuple[str, ...], granted: frozenset[str]
) -> Stage:
    """A settled contact, or one who has just been asked the last open question, settles on
    what is left; a contact not yet asked, or still with questions open, stays where they were.
    A stop answers the question whether they meant to stop, so that one settles too."""
    settles = before.stage in (Stage.SUBSCRIBED, Stage.STOP_ASKED) or (
        before.stage is Stage.CHOOSING and not pending
    )
    if not settles:
        return before.stage
    return Stage.SUBSCRIBED if granted else Stage.DECLINED


# --- start again (C09) --------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", written_forms(START_WORDS))
def test_c05_c09_every_start_word_shows_the_prompt_and_grants_nothing_from_every_stage(
    stage: Stage, typed: str, chat: ChatFactory, catalog: Catalog
) -> None:
    c = in_stage(stage, chat)
    before = c.state
    result = c.send(typed)
    language = language_of(typed)

    assert result.changes == ()
    if stage is Stage.SUBSCRIBED:
        # Already subscribed: what they receive, and a button to change it, instead.
        (reply,) = result.replies
        assert (reply.purpose, reply.language) == ("already_subscribed", language)
        for category in catalog.categories:
            assert category.title_in(language) in reply.body
        assert [b.id for b in reply.buttons] == ["optin:choose"]
        assert (c.state.stage, c.state.granted) == (Stage.SUBSCRIBED, before.granted)
        return
    # The consent prompt, current and in their language; what was granted stays granted.
    (reply,) = result.replies
    assert reply == render_prompt(catalog, language)
    assert [b.id for b in reply.buttons] == ["optin:yes", "optin:choose", "optin:no"]
    assert c.state.stage is Stage.ASKED
    assert c.state.granted == before.granted
    assert c.state.pending == ()
    assert (c.state.prompt_version, c.state.asked_at) == (reply.text_version, NOW)


# --- help (C10) ---------------------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", written_forms(HELP_WORDS))
def test_c05_c10_every_help_word_answers_with_help_and_changes_nothing_from_every_stage(
    stage: Stage, typed: str, chat: ChatFactory, catalog: Catalog
) -> None:
    c = in_stage(stage, chat)
    before = c.state
    result = c.send(typed)
    language = language_of(typed)

    assert result.changes == ()
    reply, *again = result.replies
    assert (reply.purpose, reply.language, reply.buttons) == ("help", language, ())
    assert COMPANY in reply.body
    assert "help@nimbus.example" in reply.body
    for category in catalog.categories:
        assert category.title[language] in reply.body
    for instruction in HELP_INSTRUCTIONS[language]:
        assert instruction in reply.body
    assert (c.state.stage, c.state.granted, c.state.pending) == (
        before.stage,
        before.granted,
        before.pending,
    )
    if stage not in OPEN_QUESTION:
        assert again == []
        assert (c.state.prompt_version, c.state.asked_at) == (
            before.prompt_version,
            before.asked_at,
        )
        return
    # Mid-dialogue, the question HELP interrupted is shown again, in their language, under it.
    (question,) = again
    assert (question.purpose, question.language) == (OPEN_QUESTION[stage], language)
    assert question.buttons
    assert (c.state.prompt_version, c.state.asked_at) == (question.text_version, NOW)


# --- see or change choices ----------------------------------------------------------------------


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize("typed", written_forms(PREFERENCES_WORDS))
def test_c05_every_preferences_word_shows_the_choices_and_changes_nothing_from_every_stage(
    stage: Stage, typed: str, chat: ChatFactory, catalog: Catalog
) -> None:
    c = in_stage(stage, chat)
    before = c.state
    result = c.send(typed)
    language = language_of(typed)

    assert result.changes == ()
    (reply,) = result.replies
    assert (reply.purpose, reply.language) == ("preferences", language)
    assert COMPANY in reply.body
    # Each category on one line, on or off as it stands now.
    lines = reply.body.splitlines()
    for category in catalog.categories:
        key = "preference_on" if category.id in before.granted else "preference_off"
        assert texts.text(language, key, title=category.title_in(language)) in lines
    # The one button starts the questions one by one; the tap itself grants nothing.
    assert [b.id for b in reply.buttons] == ["optin:choose"]
    assert (c.state.stage, c.state.granted, c.state.pending) == (
        before.stage,
        before.granted,
        before.pending,
    )
