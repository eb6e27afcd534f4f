"""What the bot has shown a contact, from the conversation log: the evidence a decision may cite.

A tap is consent only to a message we can show we sent to that very contact, a typed answer
answers the last question queued for them, and a confirmed withdrawal retires every question
sent before it (C23, C24). These queries gather those facts; flows decides with them.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Select, bindparam, func, literal, union_all
from sqlmodel import Session, col, select

from flows.model import Sent
from flows.policy import QUESTION_PURPOSES, WITHDRAWAL_PURPOSES, Purpose
from storage.models import Message

# A question Meta could not deliver, or that a STOP cancelled before it went out, was not seen.
_UNSEEN = ("failed", "cancelled")
_QUESTION, _WITHDRAWAL = "question", "withdrawal"


def sent_to_contact(session: Session, *, contact_id: int, wamid: str) -> Message | None:
    """Our message with this wamid, if it went to this contact; None for anyone else's."""
    return session.exec(
        select(Message).where(
            Message.wamid == wamid,
            Message.contact_id == contact_id,
            Message.direction == "out",
        )
    ).first()


@dataclass(frozen=True, slots=True)
class LastShown:
    """The newest question queued for a contact (sent or about to be), and when a withdrawal
    was last confirmed to them: the time its confirmation was queued, on the clock that times
    every question we queue."""

    question: Sent | None  # as the dialogue cites it
    withdrawn_at: datetime | None


def _newest(kind: str, *conditions: ColumnElement[bool]) -> Select[Any]:
    """Each contact's newest outbound message meeting the conditions."""
    ranked = (
        select(
            literal(kind).label("kind"),
            col(Message.contact_id).label("contact_id"),
            col(Message.id).label("id"),
            col(Message.wamid).label("wamid"),
            col(Message.text_version).label("text_version"),
            col(Message.created_at).label("created_at"),
            func.row_number()
            .over(
                partition_by=col(Message.contact_id),
                order_by=(col(Message.created_at).desc(), col(Message.id).desc()),
            )
            .label("rank"),
        )
        .where(
            col(Message.contact_id).in_(bindparam("contact_ids", expanding=True)),
            Message.direction == "out",
            *conditions,
        )
        .subquery()
    )
    return select(
        ranked.c.kind,
        ranked.c.contact_id,
        ranked.c.id,
        ranked.c.wamid,
        ranked.c.text_version,
        ranked.c.created_at,
    ).where(ranked.c.rank == 1)


# Built once: every message's dialogue asks for both, for a body's contacts in one round trip.
# (kind, contact_id, id, wamid, text_version, created_at) per contact and kind.
LAST_SHOWN = union_all(
    _newest(
        _QUESTION,
        col(Message.purpose).in_([p.value for p in QUESTION_PURPOSES]),
        col(Message.status).not_in(_UNSEEN),
    ),
    _newest(_WITHDRAWAL, col(Message.purpose).in_([p.value for p in WITHDRAWAL_PURPOSES])),
)
NOTHING_SHOWN = LastShown(question=None, withdrawn_at=None)


def shown_by_contact(rows: Iterable[Sequence[Any]]) -> dict[int, LastShown]:
    """LastShown for each contact the rows of LAST_SHOWN name (each that was ever sent a
    question or a withdrawal), however they were read."""
    found: dict[int, dict[str, Sent]] = {}
    for kind, contact_id, message_id, wamid, text_version, created_at in rows:
        found.setdefault(contact_id, {})[kind] = Sent(
            wamid=wamid, text_version=text_version, sent_at=created_at, message_id=message_id
        )
    shown = {}
    for contact_id, sent in found.items():
        withdrawal = sent.get(_WITHDRAWAL)
        shown[contact_id] = LastShown(
            question=sent.get(_QUESTION),
            withdrawn_at=withdrawal.sent_at if withdrawal else None,
        )
    return shown


# A form's flow token names the message that sent it: its answer leads back to the very form,
# and to the contact it was sent to.
FORM_TOKEN_PREFIX = "form."


def form_token(message_id: str) -> str:
    return FORM_TOKEN_PREFIX + message_id


def sent_form(session: Session, *, contact_id: int, token: str | None) -> Message | None:
    """Our preferences form this flow token names, if it went to this contact; else None (a
    token of another Flow, or of a form sent to someone else)."""
    if not token or not token.startswith(FORM_TOKEN_PREFIX):
        return None
    return session.exec(
        select(Message).where(
            Message.id == token.removeprefix(FORM_TOKEN_PREFIX),
            Message.contact_id == contact_id,
            Message.direction == "out",
            Message.purpose == Purpose.PREFERENCES_FORM.value,
        )
    ).first()
