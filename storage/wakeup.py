"""Waking idle dispatchers in other processes when rows are queued (PostgreSQL LISTEN/NOTIFY).

Whoever queues a row notifies in the same transaction, so PostgreSQL delivers the notification at
commit, when the row becomes visible, and never for a transaction rolled back. A dispatcher in
another process listens on a connection of its own and is woken at once instead of at its next
poll. Notifications are a hint: a missed one costs one poll interval, never a message.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from storage.db import is_postgres

log = logging.getLogger(__name__)

CHANNEL = "optin_outbox"
_PENDING = "optin_outbox_notify"  # session.info: this transaction queued a row


def notify_queued(session: Session) -> None:
    """Wake the listening dispatchers when this transaction commits: one NOTIFY per transaction,
    sent just before COMMIT, so it does not split the transaction's inserts into two flushes."""
    if is_postgres(session.get_bind()):
        session.info[_PENDING] = True


@event.listens_for(Session, "before_commit")
def _notify_before_commit(session: Session) -> None:
    if session.info.pop(_PENDING, False):
        session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})


@event.listens_for(Session, "after_rollback")
def _forget_on_rollback(session: Session) -> None:
    session.info.pop(_PENDING, None)


def listen(
    engine: Engine,
    wake: threading.Event,
    stop: threading.Event,
    listening: threading.Event | None = None,
) -> None:
    """Set wake on every notification until stop is set; reconnects after a failure.

    Runs in a thread of its own; sets listening once subscribed. Does nothing on SQLite, where
    one dispatcher sends, in the web process that queues.
    """
    if engine.dialect.name != "postgresql":
        return
    conninfo = engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
    while not stop.is_set():
        try:
            with psycopg.connect(conninfo, autocommit=True) as connection:
                connection.execute(f"LISTEN {CHANNEL}")
                if listening is not None:
                    listening.set()
                while not stop.is_set():
                    for _ in connection.notifies(timeout=0.5, stop_after=1):
                        wake.set()
        except psycopg.Error as exc:
            # The poll still finds every row; listening resumes when the database is back.
            log.warning("outbox wake-ups unavailable (%s); polling", type(exc).__name__)
            stop.wait(2.0)
