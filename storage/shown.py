"""What the bot has shown a contact, from the conversation log: the evidence a decision may cite.

A tap is consent only to a message we can show we sent to that very contact, a typed answer
answers the last question queued for them, and a confirmed withdrawal retires every question
sent before it (C23, C24). These queries gather those facts; flows decides with them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import literal, union_all
from sqlmodel import Session, col, select

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

    question: Message | None
    withdrawn_at: datetime | None


def last_shown(session: Session, *, contact_id: int) -> LastShown:
    """Both in one round trip: each message's dialogue asks for them."""
    mine = (Message.contact_id == contact_id, Message.direction == "out")
    question = (
        select(literal(_QUESTION).label("kind"), col(Message.id).label("id"))
        .where(
            *mine,
            col(Message.purpose).in_([p.value for p in QUESTION_PURPOSES]),
            col(Message.status).not_in(_UNSEEN),
        )
        .order_by(col(Message.created_at).desc())
        .limit(1)
        .subquery()
    )
    withdrawal = (
        select(literal(_WITHDRAWAL).label("kind"), col(Message.id).label("id"))
        .where(*mine, col(Message.purpose).in_([p.value for p in WITHDRAWAL_PURPOSES]))
        .order_by(col(Message.created_at).desc())
        .limit(1)
        .subquery()
    )
    newest = union_all(select(question), select(withdrawal)).subquery()
    found = {
        kind: message
        for kind, message in session.execute(
            select(newest.c.kind, Message).join(Message, col(Message.id) == newest.c.id)
        )
    }
    withdrawal_message = found.get(_WITHDRAWAL)
    return LastShown(
        question=found.get(_QUESTION),
        withdrawn_at=withdrawal_message.created_at if withdrawal_message else None,
    )


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
