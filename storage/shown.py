"""What the bot has shown a contact, from the conversation log: the evidence a decision may cite.

A tap is consent only to a message we can show we sent to that very contact, a typed answer
answers the last question queued for them, and a confirmed withdrawal retires every question
sent before it (C23, C24). These queries gather those facts; flows decides with them.
"""

from __future__ import annotations

from datetime import datetime

from sqlmodel import Session, col, select

from flows.policy import QUESTION_PURPOSES, WITHDRAWAL_PURPOSES, Purpose
from storage.models import Message

# A question Meta could not deliver, or that a STOP cancelled before it went out, was not seen.
_UNSEEN = ("failed", "cancelled")


def sent_to_contact(session: Session, *, contact_id: int, wamid: str) -> Message | None:
    """Our message with this wamid, if it went to this contact; None for anyone else's."""
    return session.exec(
        select(Message).where(
            Message.wamid == wamid,
            Message.contact_id == contact_id,
            Message.direction == "out",
        )
    ).first()


def last_question(session: Session, *, contact_id: int) -> Message | None:
    """The newest question queued for this contact, sent or about to be."""
    return session.exec(
        select(Message)
        .where(
            Message.contact_id == contact_id,
            Message.direction == "out",
            col(Message.purpose).in_([p.value for p in QUESTION_PURPOSES]),
            col(Message.status).not_in(_UNSEEN),
        )
        .order_by(col(Message.created_at).desc())
        .limit(1)
    ).first()


def last_withdrawal_at(session: Session, *, contact_id: int) -> datetime | None:
    """When a withdrawal by this contact was last confirmed to them: the time its confirmation
    was queued, on the clock that times every question we queue."""
    return session.exec(
        select(Message.created_at)
        .where(
            Message.contact_id == contact_id,
            Message.direction == "out",
            col(Message.purpose).in_([p.value for p in WITHDRAWAL_PURPOSES]),
        )
        .order_by(col(Message.created_at).desc())
        .limit(1)
    ).first()


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
