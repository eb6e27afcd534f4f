"""One turn of the dialogue: the message being answered, and how transitions are guarded."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from flows.catalog import Catalog
from flows.model import DialogueState, Inbound, StepResult
from flows.signals import Signal


@dataclass(frozen=True, slots=True, kw_only=True)
class Turn:
    """Everything a transition needs about the message being answered."""

    state: DialogueState
    event: Inbound
    catalog: Catalog
    now: datetime
    language: str
    signal: Signal
    category_id: str | None = None  # from a cat:<id>:* or stopask:<id> button, or a stop
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
