"""The double opt-in template's taps (C28): consent collected off WhatsApp is confirmed, or
declined, by the person's own tap; a choice made on the hosted page is granted only then.

flows.dialogue names these in its table, beside the transitions of flows.transitions.
"""

from __future__ import annotations

from dataclasses import replace

from flows.model import StepResult
from flows.policy import double_opt_in_answers, requested_grants
from flows.render import render_confirmation
from flows.turn import Turn


def confirm_double_opt_in(turn: Turn) -> StepResult:
    """Everything awaiting the tap is granted, and the contact hears what they now receive.

    A choice made on the hosted page is granted only now, exactly as chosen, with the page's
    source and wording; consent reported by the business is confirmed."""
    requested = turn.state.requested
    chosen = turn.catalog.in_order(frozenset(requested.categories)) if requested else ()
    awaiting = turn.catalog.in_order(turn.state.awaiting_confirmation - frozenset(chosen))
    changes = double_opt_in_answers(
        awaiting, confirmed=True, occurred_at=turn.event.timestamp, evidence=turn.event.evidence
    )
    if requested is not None:
        changes += requested_grants(
            chosen,
            source=requested.source,
            text=requested.text,
            occurred_at=turn.event.timestamp,
            evidence={**requested.evidence, **turn.event.evidence},
        )
    granted = turn.state.granted | frozenset(awaiting) | frozenset(chosen)
    state = replace(turn.state, granted=granted, awaiting_confirmation=frozenset(), requested=None)
    replies = (render_confirmation(turn.catalog, turn.language, granted),) if granted else ()
    return StepResult(state=state, changes=changes, replies=replies)


def decline_double_opt_in(turn: Turn) -> StepResult:
    """Everything awaiting the tap is withdrawn; the refusal needs no answer. A choice made on
    the hosted page was never granted, so declining it leaves the ledger as it is."""
    awaiting = turn.catalog.in_order(turn.state.awaiting_confirmation)
    changes = double_opt_in_answers(
        awaiting, confirmed=False, occurred_at=turn.event.timestamp, evidence=turn.event.evidence
    )
    granted = turn.state.granted - frozenset(awaiting)
    state = replace(turn.state, granted=granted, awaiting_confirmation=frozenset(), requested=None)
    return StepResult(state=state, changes=changes)
