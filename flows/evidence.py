"""Which question a message answers, and whether the answer proves consent to it.

A tap answers the message it was tapped on, and only when the caller found that message among
those we sent to this contact (C24): a context we cannot vouch for answers nothing. A typed
answer answers the last question we sent, unless it quotes one of ours. Either way the
question answered must still be worded as today (C19), have been shown less than 24 hours
before (C02), and have been shown after the contact's last withdrawal (C23). The ledger row then
cites that very message as its evidence.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import timedelta

from flows.model import Reply, Sent, Stage
from flows.render import render_category_prompt, render_prompt
from flows.signals import Signal, usable_languages
from flows.turn import Turn

PROMPT_LIFETIME = timedelta(hours=24)  # an answer later than this to a prompt is not consent
# Meta's timestamps are whole seconds, ours are not: the slack when comparing the two.
CLOCK_SLACK = timedelta(seconds=2)
TYPED_ANSWERS = frozenset({Signal.YES, Signal.NO})


def prompt_is_live(turn: Turn) -> bool:
    """A current prompt answered within its lifetime, after it was shown (C02, C19, C23)."""
    return prompt_is_answered(turn) and _within_lifetime(turn)


def prompt_is_answered(turn: Turn) -> bool:
    """A current prompt is what this message answers; its age does not matter to a refusal."""
    return answered_prompt(turn) is not None and not _typed_before_question(turn)


def question_is_live(turn: Turn) -> bool:
    """As prompt_is_live, for the category question this message is about."""
    return question_is_answered(turn) and _within_lifetime(turn)


def question_is_answered(turn: Turn) -> bool:
    category_id = open_category(turn)
    if category_id is None:
        return False
    answered = answered_question(turn, category_id)
    return answered is not None and not _typed_before_question(turn)


def answered_prompt(turn: Turn) -> Reply | None:
    """The consent prompt this message answers, as shown, if it is still a valid question."""
    return _answered(turn, _prompts(turn))


def answered_question(turn: Turn, category_id: str) -> Reply | None:
    return _answered(turn, _category_prompts(turn, category_id))


def open_category(turn: Turn) -> str | None:
    """The category a message is about: the button's, or else the question being asked."""
    if turn.category_id is not None:
        return turn.category_id
    if turn.state.stage is Stage.CHOOSING and turn.state.pending:
        return turn.state.pending[0]
    return None


def evidence(turn: Turn) -> dict[str, str]:
    """The ids that prove a decision made by this message: its own, and the question it
    answers when that is one we can show we sent this contact (C12, C24). A question answered
    before the dispatcher recorded its wamid is cited by its id in our conversation log, where
    the wamid is filled in once it is sent."""
    shown = _shown(turn)
    pairs = (
        ("reply_wamid", turn.event.wamid),
        ("prompt_wamid", shown.wamid if shown else None),
        ("prompt_message_id", shown.message_id if shown and not shown.wamid else None),
    )
    return {key: value for key, value in pairs if value}


def _shown(turn: Turn) -> Sent | None:
    """The message this one answers: a message of ours it quotes or was tapped on, else, for a
    typed answer, the question sent last if it is the one the dialogue asked last."""
    event = turn.event
    if event.context_wamid and event.context_sent_at is not None:
        return Sent(
            wamid=event.context_wamid,
            text_version=event.context_text_version,
            sent_at=event.context_sent_at,
        )
    last = turn.state.last_question
    if turn.signal in TYPED_ANSWERS and last and last.text_version == turn.state.prompt_version:
        return last
    return None


def _answered(turn: Turn, candidates: Iterable[Reply]) -> Reply | None:
    """The question this message answers, if its wording is still the current one (C19) and no
    withdrawal has retired it since it was sent (C23). Any language counts: the person may have
    switched since."""
    shown = _shown(turn)
    if shown is None or shown.text_version is None:
        return None
    withdrawn_at = turn.state.withdrawn_at
    if withdrawn_at is not None and shown.sent_at <= withdrawn_at:
        return None
    return next((r for r in candidates if r.text_version == shown.text_version), None)


def _within_lifetime(turn: Turn) -> bool:
    asked_at = turn.state.asked_at
    return asked_at is not None and turn.event.timestamp - asked_at <= PROMPT_LIFETIME


def _typed_before_question(turn: Turn) -> bool:
    """A typed answer written before the question was shown ("hi", "yes" sent in a burst) answers
    nothing. Buttons need no such check: their context is the very message they were tapped on."""
    if turn.signal not in TYPED_ANSWERS:
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
