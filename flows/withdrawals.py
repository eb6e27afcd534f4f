"""Every way a contact stops messages: STOP and STOP <category> in any words (C07, C08, C21),
the one-tap question when their words may be asking to stop, and Meta's opt-outs (C13).

A withdrawal needs no live question: it is honoured whenever and wherever it is asked.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from datetime import datetime

from flows.catalog import Catalog
from flows.model import DialogueState, Stage, StepResult
from flows.policy import META_OPT_OUT_TEXT, Purpose, marketing_opt_out
from flows.render import render_kept
from flows.transitions import ask_stop_question, notice, settled_stage, withdrawal, without
from flows.turn import Turn


def stop_all(turn: Turn) -> StepResult:
    changes = withdrawal(turn, turn.catalog.in_order(turn.state.granted))
    state = replace(turn.state, stage=Stage.STOPPED, granted=frozenset(), pending=(), reprompts=0)
    return StepResult(state=state, changes=changes, replies=(notice(turn, Purpose.STOP),))


def stop_category(turn: Turn) -> StepResult:
    category = turn.catalog.category(turn.category_id or "")
    assert category is not None, "classify names only catalog categories"
    changes = withdrawal(turn, (category.id,))
    state = replace(
        turn.state,
        granted=turn.state.granted - {category.id},
        pending=without(turn.state.pending, category.id),
        reprompts=0,
    )
    # Withdrawing the last granted category, or the last one still to be asked, settles the
    # stage; so does any answer to the question whether they meant to stop.
    finished_choosing = state.stage is Stage.CHOOSING and not state.pending
    if finished_choosing or state.stage in (Stage.SUBSCRIBED, Stage.STOP_ASKED):
        state = replace(state, stage=settled_stage(turn.catalog, state.granted), pending=())
    reply = notice(turn, Purpose.STOP_CATEGORY, title=category.title_in(turn.language))
    return StepResult(state=state, changes=changes, replies=(reply,))


def has_consent(turn: Turn) -> bool:
    """Something this stop would withdraw is granted (after STOP, only a grant made off
    WhatsApp can be): otherwise the first stop's one confirmation stands alone (C07)."""
    if turn.category_id is not None:
        return turn.category_id in turn.state.granted
    return bool(turn.state.granted)


def ask_to_stop(turn: Turn) -> StepResult:
    """C21: words that may be asking to stop get one tap to do it, never silence: stop
    everything, stop the category they named (or each one granted), or change nothing."""
    granted = turn.catalog.in_order(turn.state.granted)
    if turn.category_id is not None:
        offered = (turn.category_id,) if turn.category_id in turn.state.granted else ()
    else:
        offered = granted if len(granted) > 1 else ()
    return ask_stop_question(turn, turn.state, offered)


def keep(turn: Turn) -> StepResult:
    """stopask:keep, or a typed no to the question: nothing changes, and the reply says so."""
    state = replace(turn.state, reprompts=0)
    if state.stage is Stage.STOP_ASKED:
        state = replace(state, stage=settled_stage(turn.catalog, state.granted), pending=())
    reply = render_kept(turn.catalog, turn.language, state.granted)
    return StepResult(state=state, replies=(reply,))


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
