"""The transitions of the consent dialogue: answers to our questions, the keywords that inform,
and how questions are shown. Withdrawals are in flows.withdrawals, the guards that decide whether
an answer is consent in flows.evidence.

flows.dialogue names these in its table; each handler takes one Turn and returns a StepResult.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace

from flows.catalog import Catalog
from flows.entry import entry_point_in
from flows.evidence import answered_prompt, answered_question, evidence, open_category
from flows.model import DialogueState, Reply, Stage, StepResult
from flows.policy import (
    ConsentChange,
    ConsentSource,
    Purpose,
    decisions,
    withdrawals,
)
from flows.render import (
    render_already_subscribed,
    render_category_prompt,
    render_confirmation,
    render_help,
    render_notice,
    render_preferences,
    render_preferences_form,
    render_prompt,
    render_stop_question,
)
from flows.signals import usable_language
from flows.turn import Turn

MAX_REPROMPTS = 2  # at most two hints in a row, then one pointer to HELP

# ---------------------------------------------------------------------------------------------
# Answers to the consent prompt and the category questions.


def accept_all(turn: Turn) -> StepResult:
    """Every category, recorded with the exact prompt answered. Guarded by prompt_is_live."""
    prompt = answered_prompt(turn)
    assert prompt is not None, "taken only behind prompt_is_live"
    ids = turn.catalog.category_ids
    changes = _decision(turn, ids, granted=True, text=prompt.shown_text)
    state = replace(turn.state, granted=turn.state.granted | frozenset(ids), pending=())
    return _settle(turn, state, changes)


def decline_all(turn: Turn) -> StepResult:
    prompt = answered_prompt(turn)
    ids = turn.catalog.category_ids
    words = prompt.shown_text if prompt else turn.event.own_words
    changes = _decision(turn, ids, granted=False, text=words)
    state = replace(turn.state, granted=turn.state.granted - frozenset(ids), pending=())
    return _settle(turn, state, changes)


def choose(turn: Turn) -> StepResult:
    ids = turn.catalog.category_ids
    if not ids:
        return show_prompt(turn)
    return _ask_category(turn, turn.state, ids)


def accept_category(turn: Turn) -> StepResult:
    """The category asked, recorded with its exact question. Guarded by question_is_live."""
    category_id = open_category(turn)
    question = answered_question(turn, category_id) if category_id else None
    assert category_id is not None and question is not None, "taken only behind question_is_live"
    changes = _decision(turn, (category_id,), granted=True, text=question.shown_text)
    state = replace(
        turn.state,
        granted=turn.state.granted | {category_id},
        pending=without(turn.state.pending, category_id),
    )
    return _settle(turn, state, changes)


def decline_category(turn: Turn) -> StepResult:
    category_id = open_category(turn)
    if category_id is None:
        return ask_category_again(turn)
    question = answered_question(turn, category_id)
    words = question.shown_text if question else turn.event.own_words
    changes = _decision(turn, (category_id,), granted=False, text=words)
    state = replace(
        turn.state,
        granted=turn.state.granted - {category_id},
        pending=without(turn.state.pending, category_id),
    )
    return _settle(turn, state, changes)


def ask_category_again(turn: Turn) -> StepResult:
    """Not consent: the category asked again, first, in its current wording (C02, C19)."""
    category_id = open_category(turn)
    if category_id is None:
        return show_question(turn, turn.state)
    pending = (category_id, *without(turn.state.pending, category_id))
    return _ask_category(turn, turn.state, pending)


# ---------------------------------------------------------------------------------------------
# Entry points; the double opt-in template's taps are in flows.confirmations.


def open_from_link(turn: Turn) -> StepResult:
    """A chat opened with a link's prefilled text: the prompt, as to anyone who writes, never
    consent (C02); the link's tag is kept for the grants that answer it."""
    state = replace(turn.state, entry_point=entry_point_in(turn.event.text))
    return _show_prompt(turn, state)


# ---------------------------------------------------------------------------------------------
# Keywords that inform, and inputs with no transition.


def show_prompt(turn: Turn) -> StepResult:
    """The consent prompt: a first contact, START (C09), or an answer that is not consent."""
    return _show_prompt(turn, turn.state)


def show_subscriptions(turn: Turn) -> StepResult:
    """START from someone already subscribed: what they receive and how to change it, rather
    than a prompt for what they already agreed to."""
    reply = render_already_subscribed(turn.catalog, turn.language, turn.state.granted)
    return StepResult(state=replace(turn.state, reprompts=0), replies=(reply,))


def show_help(turn: Turn) -> StepResult:
    reply = render_help(turn.catalog, turn.language)
    return StepResult(state=replace(turn.state, reprompts=0), replies=(reply,))


def help_then_question(turn: Turn) -> StepResult:
    """HELP in the middle of a question: the help, then the question again under it."""
    helped = show_help(turn)
    asked = show_question(turn, helped.state)
    return StepResult(state=asked.state, replies=helped.replies + asked.replies)


def show_preferences(turn: Turn) -> StepResult:
    """Each category on or off with a button to change them, or, once the business has
    published it, the preferences form (a WhatsApp Flow) with the granted ones ticked."""
    as_form = turn.catalog.preferences_flow.enabled
    render = render_preferences_form if as_form else render_preferences
    reply = render(turn.catalog, turn.language, turn.state.granted)
    return StepResult(state=replace(turn.state, reprompts=0), replies=(reply,))


def switch_language(turn: Turn) -> StepResult:
    language = usable_language(turn.catalog, turn.switch_to)
    state = replace(turn.state, language=language, language_chosen=True, reprompts=0)
    turn = replace(turn, state=state, language=language)
    if state.stage in (Stage.NEW, Stage.ASKED, Stage.CHOOSING, Stage.STOP_ASKED):
        return show_question(turn, state)
    return StepResult(state=state, replies=(notice(turn, Purpose.LANGUAGE),))


def cannot_read(turn: Turn) -> StepResult:
    return StepResult(state=turn.state, replies=(notice(turn, Purpose.UNREADABLE),))


def silence(turn: Turn) -> StepResult:
    return StepResult(state=turn.state)


def reprompt(turn: Turn) -> StepResult:
    """An answer not understood while a question is open: a one-line hint, the question being
    still on screen above it; after two, one pointer to HELP; then quiet, never a loop."""
    count = turn.state.reprompts
    state = replace(turn.state, reprompts=count + 1)
    if count < MAX_REPROMPTS:
        again = show_question(turn, turn.state, reprompts=count + 1)
        if again.state.prompt_version != turn.state.prompt_version:
            # The question on screen is in another language (or wording) than the one we would
            # ask in now: a hint pointing at it would not help, the question itself does.
            return again
        return StepResult(state=state, replies=(notice(turn, Purpose.HINT),))
    if count == MAX_REPROMPTS:
        return StepResult(state=state, replies=(notice(turn, Purpose.REPROMPT_LIMIT),))
    return silence(turn)


def fallback(turn: Turn) -> StepResult:
    # Settled contacts chatting get one pointer to HELP, then quiet until they do something.
    if turn.state.reprompts:
        return silence(turn)
    reply = notice(turn, Purpose.FALLBACK)
    return StepResult(state=replace(turn.state, reprompts=1), replies=(reply,))


# ---------------------------------------------------------------------------------------------
# Showing questions and settling the dialogue.


def _show_prompt(turn: Turn, state: DialogueState, *, reprompts: int = 0) -> StepResult:
    return _ask(turn, state, render_prompt(turn.catalog, turn.language), Stage.ASKED, (), reprompts)


def _ask_category(
    turn: Turn,
    state: DialogueState,
    pending: tuple[str, ...],
    *,
    reprompts: int = 0,
    changes: tuple[ConsentChange, ...] = (),
) -> StepResult:
    question = render_category_prompt(turn.catalog, pending[0], turn.language)
    asked = _ask(turn, state, question, Stage.CHOOSING, pending, reprompts)
    return replace(asked, changes=changes)


def ask_stop_question(
    turn: Turn, state: DialogueState, categories: tuple[str, ...], *, reprompts: int = 0
) -> StepResult:
    """C21: stop everything, stop one of these categories, or change nothing (stopask:*)."""
    question = render_stop_question(turn.catalog, turn.language, categories)
    return _ask(turn, state, question, Stage.STOP_ASKED, categories, reprompts)


def _ask(
    turn: Turn,
    state: DialogueState,
    question: Reply,
    stage: Stage,
    pending: tuple[str, ...],
    reprompts: int,
) -> StepResult:
    state = replace(
        state,
        stage=stage,
        pending=pending,
        prompt_version=question.text_version,
        asked_at=turn.now,
        reprompts=reprompts,
    )
    return StepResult(state=state, replies=(question,))


def show_question(turn: Turn, state: DialogueState, *, reprompts: int = 0) -> StepResult:
    """The question that is open: the category being asked while choosing, whether they meant to
    stop, else the prompt."""
    if state.stage is Stage.CHOOSING and state.pending:
        return _ask_category(turn, state, state.pending, reprompts=reprompts)
    if state.stage is Stage.STOP_ASKED:
        return ask_stop_question(turn, state, state.pending, reprompts=reprompts)
    return _show_prompt(turn, state, reprompts=reprompts)


def settled_stage(catalog: Catalog, granted: frozenset[str]) -> Stage:
    return (
        Stage.SUBSCRIBED if any(cid in granted for cid in catalog.category_ids) else Stage.DECLINED
    )


def _settle(turn: Turn, state: DialogueState, changes: tuple[ConsentChange, ...]) -> StepResult:
    """After an answer: the next category if any is left, else confirm where the contact stands."""
    if state.stage is Stage.CHOOSING and state.pending:
        return _ask_category(turn, state, state.pending, changes=changes)
    stage = settled_stage(turn.catalog, state.granted)
    # The answer that settles the dialogue is the last one an entry point is recorded with.
    state = replace(state, stage=stage, pending=(), reprompts=0, entry_point=None)
    if stage is Stage.SUBSCRIBED:
        reply = render_confirmation(turn.catalog, turn.language, state.granted)
    else:
        reply = notice(turn, Purpose.DECLINED)
    return StepResult(state=state, changes=changes, replies=(reply,))


def notice(turn: Turn, purpose: Purpose, **values: str) -> Reply:
    return render_notice(turn.catalog, turn.language, purpose, **values)


# ---------------------------------------------------------------------------------------------
# Ledger rows (C12), through flows.policy.


def _decision(
    turn: Turn, category_ids: Iterable[str], *, granted: bool, text: str
) -> tuple[ConsentChange, ...]:
    """The contact's own answer on WhatsApp, one row per category the question named, with
    the link or QR code the conversation was opened from."""
    found = evidence(turn)
    if turn.state.entry_point:
        found = found | {"entry_point": turn.state.entry_point}
    return decisions(
        category_ids,
        granted=granted,
        source=ConsentSource.WHATSAPP,
        text=text,
        occurred_at=turn.event.timestamp,
        evidence=found,
    )


def withdrawal(turn: Turn, category_ids: Iterable[str]) -> tuple[ConsentChange, ...]:
    """A stop in the contact's own words, recorded only for what is granted now."""
    return withdrawals(
        turn.state.granted,
        category_ids,
        source=ConsentSource.WHATSAPP,
        text=turn.event.own_words,
        occurred_at=turn.event.timestamp,
        evidence=evidence(turn),
    )


def without(pending: tuple[str, ...], category_id: str) -> tuple[str, ...]:
    return tuple(p for p in pending if p != category_id)
