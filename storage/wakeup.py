"""Waking idle dispatchers in other processes when rows are queued (PostgreSQL LISTEN/NOTIFY).

The outbox's own trigger notifies in the transaction that queues a row, so PostgreSQL delivers the
notification at commit, when the row becomes visible, and never for a transaction rolled back.
A dispatcher in another process listens on a connection of its own and is woken at once instead
of at its next poll. Notifications are a hint: a missed one costs one poll interval, never a
message.
"""

from __future__ import annotations

import logging
import threading

import psycopg
from sqlalchemy.engine import Engine

log = logging.getLogger(__name__)

# Every INSERT into the outbox notifies on this channel from a trigger (migration a6d2f0c9e7b1):
# delivered at commit, never for a rollback, at no round trip of the queueing transaction's own.
CHANNEL = "optin_outbox"


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
