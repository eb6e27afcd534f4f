"""The transitions of the consent dialogue: what each signal does, and the guards that decide it.

flows.dialogue names these in its table; each handler takes one Turn and returns a StepResult.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from flows.catalog import Catalog
from flows.entry import entry_point_in
from flows.model import DialogueState, Inbound, Reply, Stage, StepResult
from flows.policy import (
    META_OPT_OUT_TEXT,
    ConsentChange,
    ConsentSource,
    Purpose,
    decisions,
    marketing_opt_out,
    withdrawals,
)
from flows.render import (
    render_category_prompt,
    render_confirmation,
    render_help,
    render_notice,
    render_preferences,
    render_prompt,
)
from flows.signals import Signal, usable_language, usable_languages

PROMPT_LIFETIME = timedelta(hours=24)  # an answer later than this to a prompt is not consent
MAX_REPROMPTS = 2  # the same question at most twice in a row, then one pointer to HELP
# Meta's timestamps are whole seconds, ours are not: the slack when comparing the two.
CLOCK_SLACK = timedelta(seconds=2)


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """Everything a transition needs about the message being answered."""

    state: DialogueState
    event: Inbound
    catalog: Catalog
    now: datetime
    language: str
    signal: Signal
    category_id: str | None = None  # from a cat:<id>:* button or STOP <category>
    switch_to: str | None = None  # from a LANGUAGE keyword


Handler = Callable[[Turn], StepResult]
Guard = Callable[[Turn], bool]


@dataclass(frozen=True, slots=True)
class Guarded:
    """A transition taken only when its guard holds; otherwise the named alternative."""

    guard: Guard
    then: Handler
    otherwise: Handler

    def __call__(self, turn: Turn) -> StepResult:
        return (self.then if self.guard(turn) else self.otherwise)(turn)


def when(guard: Guard, then: Handler, *, otherwise: Handler) -> Guarded:
    return Guarded(guard, then, otherwise)


# ---------------------------------------------------------------------------------------------
# Guards: is this answer consent to the question it answers?


def prompt_is_live(turn: Turn) -> bool:
    """A current prompt answered within its lifetime, after it was shown (C02, C19)."""
    return prompt_is_answered(turn) and _within_lifetime(turn)


def prompt_is_answered(turn: Turn) -> bool:
    """A current prompt is what this message answers; its age does not matter to a refusal."""
    return _answered(turn, _prompts(turn)) is not None and not _typed_before_question(turn)


def question_is_live(turn: Turn) -> bool:
    """As prompt_is_live, for the category question this message is about."""
    return question_is_answered(turn) and _within_lifetime(turn)


def question_is_answered(turn: Turn) -> bool:
    category_id = _open_category(turn)
    if category_id is None:
        return False
    answered = _answered(turn, _category_prompts(turn, category_id))
    return answered is not None and not _typed_before_question(turn)


def _answered(turn: Turn, candidates: Iterable[Reply]) -> Reply | None:
    """The question this message answers, if its wording is still the current one (C19).

    The version is the one of the message replied to; a typed answer has none, so it answers
    the last question shown. Any language counts: the person may have switched since."""
    version = turn.event.context_text_version or turn.state.prompt_version
    return next((r for r in candidates if r.text_version == version), None)


def _within_lifetime(turn: Turn) -> bool:
    asked_at = turn.state.asked_at
    return asked_at is not None and turn.event.timestamp - asked_at <= PROMPT_LIFETIME


def _typed_before_question(turn: Turn) -> bool:
    """A typed answer written before the question was shown ("hi", "yes" sent in a burst) answers
    nothing. Buttons need no such check: their context is the very message they were tapped on."""
    if turn.signal not in (Signal.YES, Signal.NO):
        return False
    asked_at = turn.state.asked_at
    return asked_at is None or turn.event.timestamp < asked_at - CLOCK_SLACK


def _prompts(turn: Turn) -> tuple[Reply, ...]:
    return tuple(render_prompt(turn.catalog, lang) for lang in _languages_contact_first(turn))


def _category_prompts(turn: Turn, category_id: str) -> tuple[Reply, ...]:
    return tuple(
        render_category_prompt(turn.catalog, category_id, lang)
        for lang in _languages_contact_first(turn)
    )


def _languages_contact_first(turn: Turn) -> tuple[str, ...]:
    others = tuple(o for o in usable_languages(turn.catalog) if o != turn.language)
    return (turn.language, *others)


def _open_category(turn: Turn) -> str | None:
    """The category a message is about: the button's, or else the question being asked."""
    if turn.category_id is not None:
        return turn.category_id
    if turn.state.stage is Stage.CHOOSING and turn.state.pending:
        return turn.state.pending[0]
    return None


# ---------------------------------------------------------------------------------------------
# Answers to the consent prompt and the category questions.


def accept_all(turn: Turn) -> StepResult:
    """Every category, recorded with the exact prompt answered. Guarded by prompt_is_live."""
    prompt = _answered(turn, _prompts(turn))
    assert prompt is not None, "taken only behind prompt_is_live"
    ids = turn.catalog.category_ids
    changes = _decision(turn, ids, granted=True, text=prompt.shown_text)
    state = replace(turn.state, granted=turn.state.granted | frozenset(ids), pending=())
    return _settle(turn, state, changes)


def decline_all(turn: Turn) -> StepResult:
    prompt = _answered(turn, _prompts(turn))
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
    category_id = _open_category(turn)
    question = _answered(turn, _category_prompts(turn, category_id)) if category_id else None
    assert category_id is not None and question is not None, "taken only behind question_is_live"
    changes = _decision(turn, (category_id,), granted=True, text=question.shown_text)
    state = replace(
        turn.state,
        granted=turn.state.granted | {category_id},
        pending=_without(turn.state.pending, category_id),
    )
    return _settle(turn, state, changes)


def decline_category(turn: Turn) -> StepResult:
    category_id = _open_category(turn)
    if category_id is None:
        return ask_category_again(turn)
    question = _answered(turn, _category_prompts(turn, category_id))
    words = question.shown_text if question else turn.event.own_words
    changes = _decision(turn, (category_id,), granted=False, text=words)
    state = replace(
        turn.state,
        granted=turn.state.granted - {category_id},
        pending=_without(turn.state.pending, category_id),
    )
    return _settle(turn, state, changes)


def ask_category_again(turn: Turn) -> StepResult:
    """Not consent: the category asked again, first, in its current wording (C02, C19)."""
    category_id = _open_category(turn)
    if category_id is None:
        return _show_question(turn, turn.state)
    pending = (category_id, *_without(turn.state.pending, category_id))
    return _ask_category(turn, turn.state, pending)


# ---------------------------------------------------------------------------------------------
# Entry points; the double opt-in template's taps are in flows.confirmations.


def open_from_link(turn: Turn) -> StepResult:
    """A chat opened with a link's prefilled text: the prompt, as to anyone who writes, never
    consent (C02); the link's tag is kept for the grants that answer it."""
    state = replace(turn.state, entry_point=entry_point_in(turn.event.text))
    return _show_prompt(turn, state)


# ---------------------------------------------------------------------------------------------
# Withdrawals.


def stop_all(turn: Turn) -> StepResult:
    changes = _withdrawal(turn, turn.catalog.in_order(turn.state.granted))
    state = replace(turn.state, stage=Stage.STOPPED, granted=frozenset(), pending=(), reprompts=0)
    return StepResult(state=state, changes=changes, replies=(_notice(turn, Purpose.STOP),))


def stop_category(turn: Turn) -> StepResult:
    category = turn.catalog.category(turn.category_id or "")
    assert category is not None, "classify names only catalog categories"
    changes = _withdrawal(turn, (category.id,))
    state = replace(
        turn.state,
        granted=turn.state.granted - {category.id},
        pending=_without(turn.state.pending, category.id),
        reprompts=0,
    )
    # Withdrawing the last granted category, or the last one still to be asked, settles the stage.
    finished_choosing = state.stage is Stage.CHOOSING and not state.pending
    if finished_choosing or state.stage is Stage.SUBSCRIBED:
        state = replace(state, stage=settled_stage(turn.catalog, state.granted))
    reply = _notice(turn, Purpose.STOP_CATEGORY, title=category.title_in(turn.language))
    return StepResult(state=state, changes=changes, replies=(reply,))


def stop_promotions(turn: Turn) -> StepResult:
    """Meta's "Stop promotions" quick reply is Meta's opt-out, answered by Meta, not by us."""
    return meta_opt_out(
        turn.state, turn.catalog, occurred_at=turn.event.timestamp, evidence=turn.event.evidence
    )


def meta_opt_out(
    state: DialogueState,
    catalog: Catalog,
    *,
    occurred_at: datetime,
    evidence: Mapping[str, str],
    text: str = META_OPT_OUT_TEXT,
) -> StepResult:
    """C13: every granted marketing category withdrawn, source meta; no reply."""
    changes = marketing_opt_out(
        state.granted, catalog.marketing_ids, occurred_at=occurred_at, evidence=evidence, text=text
    )
    granted = state.granted - {change.category for change in changes}
    stage = settled_stage(catalog, granted) if state.stage is Stage.SUBSCRIBED else state.stage
    return StepResult(state=replace(state, granted=granted, stage=stage), changes=changes)


# ---------------------------------------------------------------------------------------------
# Keywords that inform, and inputs with no transition.


def show_prompt(turn: Turn) -> StepResult:
    """The consent prompt: a first contact, START (C09), or an answer that is not consent."""
    return _show_prompt(turn, turn.state)


def show_help(turn: Turn) -> StepResult:
    reply = render_help(turn.catalog, turn.language)
    return StepResult(state=replace(turn.state, reprompts=0), replies=(reply,))


def show_preferences(turn: Turn) -> StepResult:
    reply = render_preferences(turn.catalog, turn.language, turn.state.granted)
    return StepResult(state=replace(turn.state, reprompts=0), replies=(reply,))


def switch_language(turn: Turn) -> StepResult:
    language = usable_language(turn.catalog, turn.switch_to)
    state = replace(turn.state, language=language, language_chosen=True, reprompts=0)
    turn = replace(turn, state=state, language=language)
    if state.stage in (Stage.NEW, Stage.ASKED, Stage.CHOOSING):
        return _show_question(turn, state)
    return StepResult(state=state, replies=(_notice(turn, Purpose.LANGUAGE),))


def cannot_read(turn: Turn) -> StepResult:
    return StepResult(state=turn.state, replies=(_notice(turn, Purpose.UNREADABLE),))


def silence(turn: Turn) -> StepResult:
    return StepResult(state=turn.state)


def reprompt(turn: Turn) -> StepResult:
    count = turn.state.reprompts
    if count < MAX_REPROMPTS:
        return _show_question(turn, turn.state, reprompts=count + 1)
    if count == MAX_REPROMPTS:
        state = replace(turn.state, reprompts=count + 1)
        return StepResult(state=state, replies=(_notice(turn, Purpose.REPROMPT_LIMIT),))
    return silence(turn)  # the pointer to HELP was given; never loop


def fallback(turn: Turn) -> StepResult:
    # Settled contacts chatting get one pointer to HELP, then quiet until they do something.
    if turn.state.reprompts:
        return silence(turn)
    reply = _notice(turn, Purpose.FALLBACK)
    return StepResult(state=replace(turn.state, reprompts=1), replies=(reply,))


# ---------------------------------------------------------------------------------------------
# Showing questions and settling the dialogue.


def _show_prompt(turn: Turn, state: DialogueState, *, reprompts: int = 0) -> StepResult:
    prompt = render_prompt(turn.catalog, turn.language)
    state = replace(
        state,
        stage=Stage.ASKED,
        pending=(),
        prompt_version=prompt.text_version,
        asked_at=turn.now,
        reprompts=reprompts,
    )
    return StepResult(state=state, replies=(prompt,))


def _ask_category(
    turn: Turn,
    state: DialogueState,
    pending: tuple[str, ...],
    *,
    reprompts: int = 0,
    changes: tuple[ConsentChange, ...] = (),
) -> StepResult:
    question = render_category_prompt(turn.catalog, pending[0], turn.language)
    state = replace(
        state,
        stage=Stage.CHOOSING,
        pending=pending,
        prompt_version=question.text_version,
        asked_at=turn.now,
        reprompts=reprompts,
    )
    return StepResult(state=state, changes=changes, replies=(question,))


def _show_question(turn: Turn, state: DialogueState, *, reprompts: int = 0) -> StepResult:
    """The question that is open: the category being asked while choosing, else the prompt."""
    if state.stage is Stage.CHOOSING and state.pending:
        return _ask_category(turn, state, state.pending, reprompts=reprompts)
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
        reply = _notice(turn, Purpose.DECLINED)
    return StepResult(state=state, changes=changes, replies=(reply,))


def _notice(turn: Turn, purpose: Purpose, **values: str) -> Reply:
    return render_notice(turn.catalog, turn.language, purpose, **values)


# ---------------------------------------------------------------------------------------------
# Ledger rows (C12), through flows.policy.


def _decision(
    turn: Turn, category_ids: Iterable[str], *, granted: bool, text: str
) -> tuple[ConsentChange, ...]:
    """The contact's own answer on WhatsApp, one row per category the question named, with
    the link or QR code the conversation was opened from."""
    evidence = turn.event.evidence
    if turn.state.entry_point:
        evidence = evidence | {"entry_point": turn.state.entry_point}
    return decisions(
        category_ids,
        granted=granted,
        source=ConsentSource.WHATSAPP,
        text=text,
        occurred_at=turn.event.timestamp,
        evidence=evidence,
    )


def _withdrawal(turn: Turn, category_ids: Iterable[str]) -> tuple[ConsentChange, ...]:
    """A stop in the contact's own words, recorded only for what is granted now."""
    return withdrawals(
        turn.state.granted,
        category_ids,
        source=ConsentSource.WHATSAPP,
        text=turn.event.own_words,
        occurred_at=turn.event.timestamp,
        evidence=turn.event.evidence,
    )


def _without(pending: tuple[str, ...], category_id: str) -> tuple[str, ...]:
    return tuple(p for p in pending if p != category_id)
