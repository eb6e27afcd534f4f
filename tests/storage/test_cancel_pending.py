"""After STOP, every unsent message to the contact is cancelled and taken out of the outbox, and
nothing else is touched (C07)."""

from __future__ import annotations

from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.contacts import lock_contact
from storage.db import session_scope
from storage.models import Message, OutboxItem
from storage.outbox import CANCELLED_TITLE, cancel_pending
from tests.storage.helpers import queue_reply


def test_c07_a_stop_cancels_each_unsent_message_to_the_contact_and_nothing_else(
    engine: Engine,
) -> None:
    with session_scope(engine) as session:
        stopping = lock_contact(session, wa_id="447700900701", user_id=None).id
        other = lock_contact(session, wa_id="447700900702", user_id=None).id
        assert stopping is not None and other is not None
        first, second = queue_reply(session, stopping, 1), queue_reply(session, stopping, 2)
        sent = queue_reply(session, stopping, 3)
        theirs = queue_reply(session, other, 4)
        session.get(Message, sent).status = "sent"  # type: ignore[union-attr]
    with session_scope(engine) as session:
        assert cancel_pending(session, contact_id=stopping) == 2  # the sent one is past it
        assert cancel_pending(session, contact_id=stopping) == 0  # nothing left to cancel
    with Session(engine) as session:
        messages = {m.id: m for m in session.exec(select(Message))}
        queued = set(session.exec(select(OutboxItem.message_id)))
    assert [messages[i].status for i in (first, second, sent, theirs)] == [
        "cancelled",
        "cancelled",
        "sent",
        "queued",
    ]
    assert messages[first].error_title == messages[second].error_title == CANCELLED_TITLE
    assert queued == {sent, theirs}  # the outbox rows of the cancelled ones went
