"""PREFERENCES as a WhatsApp Flow form: what its answer means, and which ledger rows it writes.

The form (flows.render.render_preferences_form) has a checkbox per category, the granted ones
ticked. Its answer is the whole set of boxes ticked, so each category is decided by comparing
that set with what is granted now:
- a granted category left unticked is withdrawn. Like any withdrawal it needs no live question
  (C21): it is honoured on any form of ours, however old, but only for a category that form
  offered, since a box the person never saw says nothing;
- a category ticked that is not granted is granted, by the person's own tick (C02), only on a
  form that is still a valid question: worded as today (C19), answered within 24 hours of being
  sent, and sent after their last withdrawal (C23). Otherwise nothing is granted and the current
  form is sent again, as the prompt is for a tap on an outdated one;
- an answer to a form we cannot show we sent this contact, or not shaped as ours, is another
  Flow's answer: kept for the business, and it changes nothing (C24).

Every row quotes the form exactly as it was shown, with its version, the reply's wamid, the
form message's wamid and the flow token as evidence (C12).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import replace

from flows.catalog import Catalog
from flows.evidence import PROMPT_LIFETIME
from flows.model import Reply, SentForm, Stage, StepResult
from flows.policy import ConsentChange, ConsentSource, decisions
from flows.render import render_form_saved, render_preferences_form
from flows.signals import usable_languages
from flows.transitions import settled_stage
from flows.turn import Turn

# The form's shape, shared with the Flow JSON the business publishes (bot.graph.forms): the
# screen the message opens, and the keys of the answer its Footer sends back.
SCREEN = "PREFERENCES"
FORM_KEY = "form"  # carries FORM_NAME: an answer to this form, not to another Flow
FORM_NAME = "preferences"
TICKED_KEY = "categories"  # the ids of the boxes ticked


def ticked_in(fields: Mapping[str, str]) -> frozenset[str] | None:
    """The categories ticked in a Flow's answer (each field's value as JSON text); None when the
    answer is not one to our form. A form sent back with no box ticked may leave the key out."""
    if _decoded(fields.get(FORM_KEY)) != FORM_NAME:
        return None
    ticked = _decoded(fields.get(TICKED_KEY, "[]"))
    if not isinstance(ticked, list) or not all(isinstance(item, str) for item in ticked):
        return None
    return frozenset(ticked)


def _decoded(value: str | None) -> object:
    try:
        return json.loads(value) if value is not None else None
    except ValueError:
        return None


def answer_form(turn: Turn) -> StepResult:
    """The boxes ticked on our form, compared with what is granted: see the module's notes."""
    form, ticked = turn.event.form, turn.event.form_ticked
    assert form is not None and ticked is not None, "classify gives FORM_ANSWER only then"
    granted = turn.state.granted
    offered = [c for c in form.offered if turn.catalog.category(c) is not None]
    withdrawn = tuple(c for c in offered if c in granted and c not in ticked)
    wanted = tuple(c for c in offered if c not in granted and c in ticked)
    given = wanted if form_is_live(turn, form) else ()
    changes = _rows(turn, form, withdrawn, granted=False) + _rows(turn, form, given, granted=True)
    now_granted = (granted - frozenset(withdrawn)) | frozenset(given)
    state = replace(turn.state, granted=now_granted)
    if changes:
        still_stopped = turn.state.stage is Stage.STOPPED and not given
        stage = Stage.STOPPED if still_stopped else settled_stage(turn.catalog, now_granted)
        state = replace(state, stage=stage, pending=(), reprompts=0)
    replies: list[Reply] = []
    language = turn.language
    if changes or turn.state.stage is not Stage.STOPPED:  # after STOP, silence (C07)
        saved = render_form_saved(turn.catalog, language, now_granted, withdrew=bool(withdrawn))
        replies.append(saved)
    if wanted and not given:
        replies.append(render_preferences_form(turn.catalog, language, now_granted))
    return StepResult(state=state, changes=changes, replies=tuple(replies))


def form_is_live(turn: Turn, form: SentForm) -> bool:
    """A tick on this form is consent: current wording, answered in time, not retired."""
    withdrawn_at = turn.state.withdrawn_at
    retired = withdrawn_at is not None and form.sent_at <= withdrawn_at
    in_time = turn.event.timestamp - form.sent_at <= PROMPT_LIFETIME
    return form.text_version in current_versions(turn.catalog) and in_time and not retired


def current_versions(catalog: Catalog) -> frozenset[str]:
    """The version of today's form in each language (the ticks are not part of its wording)."""
    empty = frozenset[str]()
    return frozenset(
        render_preferences_form(catalog, language, empty).text_version
        for language in usable_languages(catalog)
    )


def _rows(
    turn: Turn, form: SentForm, categories: tuple[str, ...], *, granted: bool
) -> tuple[ConsentChange, ...]:
    evidence = {
        "reply_wamid": turn.event.wamid,
        "prompt_wamid": form.wamid,
        "prompt_message_id": None if form.wamid else form.message_id,
        "flow_token": form.token,
        "form_version": form.text_version,
    }
    return decisions(
        categories,
        granted=granted,
        source=ConsentSource.WHATSAPP,
        text=form.text,
        occurred_at=turn.event.timestamp,
        evidence={key: value for key, value in evidence.items() if value},
    )
