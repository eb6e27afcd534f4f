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
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.db import is_postgres

log = logging.getLogger(__name__)

CHANNEL = "optin_outbox"
_NOTIFIED = "optin_outbox_notified"  # session.info: the transaction that already notified


def notify_queued(session: Session) -> None:
    """Wake the listening dispatchers when this transaction commits (once per transaction)."""
    if not is_postgres(session.get_bind()):
        return
    transaction = session.get_transaction()
    if transaction is not None and session.info.get(_NOTIFIED) is transaction:
        return
    session.execute(text("SELECT pg_notify(:channel, '')"), {"channel": CHANNEL})
    session.info[_NOTIFIED] = transaction


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
