"""The consent dialogue as a table: (stage, signal) → transition, and one pure step through it.

Nothing here reads a clock, a file or a database: the caller passes `now` and applies the result
(new state, ledger rows, replies) in one transaction. Signals come from flows.signals, the
transitions from flows.transitions and flows.withdrawals, their guards from flows.evidence, the
replies from flows.render.

Decisions worth knowing when reading the ledger:
- A grant is recorded only against a prompt that is live: its wording is the current one (C19) and
  it was shown less than 24 hours before the answer (C02). The row's text is that prompt exactly as
  shown, re-rendered in the language whose version the answer refers to.
- Every answer "no" is recorded, one row per category the question named, even for a category that
  was never granted: it is evidence of the answer. A refusal is honoured even on an outdated
  prompt; the row's text is then the customer's own words, since we cannot vouch for the wording.
- A withdrawal (STOP, STOP <category>, or a stop in the customer's own words, C21) records the
  customer's own message as the text, and only for categories granted at that moment, so a
  repeated STOP adds no rows.
- Evidence is verified (C24): a prompt_wamid is a message we sent this contact; a typed answer
  cites the last question that went out. A withdrawal retires every question sent before it (C23).
- Meta's marketing opt-out and the double opt-in taps record fixed descriptions of those acts
  (flows.policy), since the person answered a template or WhatsApp's UI, not our words.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime
from types import MappingProxyType

from flows.catalog import Catalog
from flows.confirmations import confirm_double_opt_in, decline_double_opt_in
from flows.evidence import (
    prompt_is_answered,
    prompt_is_live,
    question_is_answered,
    question_is_live,
)
from flows.forms import answer_form
from flows.model import DialogueState, Inbound, Stage, StepResult
from flows.policy import META_REFUSAL_OPT_OUT_TEXT
from flows.signals import Signal, classify, contact_language
from flows.transitions import (
    accept_all,
    accept_category,
    ask_category_again,
    cannot_read,
    choose,
    decline_all,
    decline_category,
    fallback,
    help_then_question,
    open_from_link,
    reprompt,
    show_help,
    show_preferences,
    show_prompt,
    show_subscriptions,
    silence,
    switch_language,
)
from flows.turn import Handler, Turn, when
from flows.withdrawals import (
    ask_to_stop,
    has_consent,
    keep,
    meta_opt_out,
    stop_all,
    stop_category,
    stop_promotions,
)

ANY = None  # a row for every stage; a row naming the stage wins over it


def has_chosen(turn: Turn) -> bool:
    return turn.state.stage in (Stage.SUBSCRIBED, Stage.DECLINED)


def open_question(state: DialogueState) -> str:
    """Names the question on screen: a new prompt or category question makes a new one."""
    asked_at = state.asked_at.isoformat() if state.asked_at else ""
    return f"{state.stage}|{asked_at}|{state.pending[0] if state.pending else ''}"[:96]


def told_cannot_read(turn: Turn) -> bool:
    return turn.state.unreadable_for == open_question(turn.state)


def cannot_read_once(turn: Turn) -> StepResult:
    result = cannot_read(turn)
    return replace(result, state=replace(result.state, unreadable_for=open_question(turn.state)))


TRANSITIONS: Mapping[tuple[Stage | None, Signal], Handler] = MappingProxyType(
    {
        # Keywords work from every stage (C05).
        (ANY, Signal.STOP_ALL): stop_all,  # C07; also own words that clearly ask to stop (C21)
        (ANY, Signal.STOP_CATEGORY): stop_category,  # C08
        (ANY, Signal.START): show_prompt,  # C09: the prompt again, nothing granted
        (Stage.SUBSCRIBED, Signal.START): show_subscriptions,  # what they receive, how to change
        (ANY, Signal.HELP): show_help,  # C10
        # Mid-dialogue, the question HELP interrupted is asked again under the help.
        (Stage.ASKED, Signal.HELP): help_then_question,
        (Stage.CHOOSING, Signal.HELP): help_then_question,
        (Stage.STOP_ASKED, Signal.HELP): help_then_question,
        (ANY, Signal.PREFERENCES): show_preferences,
        (ANY, Signal.LANGUAGE): switch_language,  # C11
        # Meta's "Stop promotions" quick reply on a marketing template (C13).
        (ANY, Signal.STOP_PROMOTIONS): stop_promotions,
        # Words that may be asking to stop get a one-tap question, never silence (C21). Its taps
        # are honoured wherever they are tapped, as STOP is: a withdrawal needs no live question.
        (ANY, Signal.MAYBE_STOP): ask_to_stop,
        (ANY, Signal.STOPASK_ALL): stop_all,
        (ANY, Signal.STOPASK_CATEGORY): stop_category,
        (ANY, Signal.STOPASK_KEEP): keep,
        (Stage.STOP_ASKED, Signal.YES): stop_all,
        (Stage.STOP_ASKED, Signal.NO): keep,
        # Our buttons are answered wherever they are tapped. A yes is consent only on a live
        # question we can show we sent, not retired by a withdrawal since (C02, C19, C23, C24);
        # a no is honoured even on an outdated one.
        (ANY, Signal.ALL_YES): when(prompt_is_live, accept_all, otherwise=show_prompt),
        (ANY, Signal.CHOOSE): choose,
        (ANY, Signal.ALL_NO): decline_all,
        (ANY, Signal.CATEGORY_YES): when(
            question_is_live, accept_category, otherwise=ask_category_again
        ),
        (ANY, Signal.CATEGORY_NO): decline_category,
        # The double opt-in template's taps settle consent collected off WhatsApp (C28).
        (ANY, Signal.DOI_YES): confirm_double_opt_in,
        (ANY, Signal.DOI_NO): decline_double_opt_in,
        # A link's or QR code's prefilled text: asked as usual, never consent; its tag is kept.
        (ANY, Signal.ENTRY): open_from_link,
        # A typed answer ("yes", "sure", "موافق") answers the question on screen, as its button
        # would, if written after it.
        (Stage.ASKED, Signal.YES): when(prompt_is_live, accept_all, otherwise=show_prompt),
        (Stage.ASKED, Signal.NO): when(prompt_is_answered, decline_all, otherwise=show_prompt),
        (Stage.CHOOSING, Signal.YES): when(
            question_is_live, accept_category, otherwise=ask_category_again
        ),
        (Stage.CHOOSING, Signal.NO): when(
            question_is_answered, decline_category, otherwise=ask_category_again
        ),
        # The polite answer once per open question, then quiet until a new one is asked.
        (ANY, Signal.UNREADABLE): when(told_cannot_read, silence, otherwise=cannot_read_once),
        # Not the customer's words, or from a group or an edit without a stop (C31-C33).
        (ANY, Signal.IGNORED): silence,
        # The preferences form's answer: each box against what is granted (flows.forms).
        (ANY, Signal.FORM_ANSWER): answer_form,
        # The chat opened for the first time: ask, or show what they already chose (C33).
        (ANY, Signal.WELCOME): when(has_chosen, show_preferences, otherwise=show_prompt),
        # From a click-to-WhatsApp ad, whatever it says, anything but a keyword or a stop is a
        # first contact and never consent (C03): signals.classify turns it into FROM_AD.
        (ANY, Signal.FROM_AD): show_prompt,
        # STOPPED: silence until they opt in again (C07), and one confirmation of a stop, not one
        # per STOP. Still answered: START, HELP, PREFERENCES, LANGUAGE, a yes button, "Let me
        # choose" (the PREFERENCES button), and a stop of something granted since off WhatsApp.
        (Stage.STOPPED, Signal.STOP_ALL): when(has_consent, stop_all, otherwise=silence),
        (Stage.STOPPED, Signal.STOPASK_ALL): when(has_consent, stop_all, otherwise=silence),
        (Stage.STOPPED, Signal.STOP_CATEGORY): when(has_consent, stop_category, otherwise=silence),
        (Stage.STOPPED, Signal.STOPASK_CATEGORY): when(
            has_consent, stop_category, otherwise=silence
        ),
        (Stage.STOPPED, Signal.MAYBE_STOP): silence,
        (Stage.STOPPED, Signal.STOPASK_KEEP): silence,
        (Stage.STOPPED, Signal.ALL_NO): silence,
        (Stage.STOPPED, Signal.CATEGORY_NO): silence,
        (Stage.STOPPED, Signal.UNREADABLE): silence,
        (Stage.STOPPED, Signal.FROM_AD): silence,
        (Stage.STOPPED, Signal.WELCOME): silence,
    }
)

# Lookup order: (stage, signal), then (ANY, signal), then the stage's case here: an input with no
# transition is always an explicit, named case (OTHER, and typed yes/no with no question open).
NO_TRANSITION: Mapping[Stage, Handler] = MappingProxyType(
    {
        Stage.NEW: show_prompt,  # first contact: ask
        Stage.ASKED: reprompt,  # a one-line hint: the question is still on screen
        Stage.CHOOSING: reprompt,
        Stage.STOP_ASKED: reprompt,
        Stage.SUBSCRIBED: fallback,
        Stage.DECLINED: fallback,
        Stage.STOPPED: silence,
    }
)


def transition(stage: Stage, signal: Signal) -> Handler:
    return (
        TRANSITIONS.get((stage, signal)) or TRANSITIONS.get((ANY, signal)) or NO_TRANSITION[stage]
    )


def step(state: DialogueState, event: Inbound, catalog: Catalog, now: datetime) -> StepResult:
    """One inbound message: the new state, the ledger rows to append and the replies to send."""
    language, guessed = contact_language(state, event, catalog)
    # A group is not a private conversation: its words say nothing of the contact's language.
    state = state if event.in_group else guessed
    signal, category_id, switch_to = classify(event, catalog)
    turn = Turn(
        state=state,
        event=event,
        catalog=catalog,
        now=now,
        language=language,
        signal=signal,
        category_id=category_id,
        switch_to=switch_to,
    )
    result = transition(state.stage, signal)(turn)
    # A group is not a private conversation: a stop there withdraws, silently (C31).
    return replace(result, replies=()) if event.in_group else result


def marketing_preference(
    state: DialogueState,
    value: str,
    catalog: Catalog,
    occurred_at: datetime,
    evidence: Mapping[str, str],
) -> StepResult:
    """Meta's user_preferences webhook (C13): "stop" withdraws every granted marketing category,
    as the "Stop promotions" button does. "resume" only lifts Meta's own block; it is not
    consent to any of our categories."""
    if value.strip().casefold() != "stop":
        return StepResult(state=state)
    return meta_opt_out(state, catalog, occurred_at=occurred_at, evidence=evidence)


def meta_refusal(
    state: DialogueState, catalog: Catalog, occurred_at: datetime, evidence: Mapping[str, str]
) -> StepResult:
    """Meta refused a message with 131050 (C13): the person stopped marketing messages, which
    withdraws every granted marketing category like Meta's other marketing opt-outs."""
    return meta_opt_out(
        state, catalog, occurred_at=occurred_at, evidence=evidence, text=META_REFUSAL_OPT_OUT_TEXT
    )
