"""When dispatching waits: paused after Meta rejected the token, or standing by on SQLite.

A 190 (the access token expired or was revoked) pauses every dispatcher of the database through
a flag that names the token it was seen with: an app started with another token sends again
without anyone lifting the pause, and `flask outbox resume` lifts it by hand. On SQLite only one
dispatcher sends at a time; the others stand by on a file lock.
"""

from __future__ import annotations

import fcntl
import logging
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.wiring.logmask import fingerprint
from storage.control import clear_flag, get_flag, set_flag
from storage.db import session_scope

log = logging.getLogger(__name__)

PAUSE_FLAG = "dispatch_paused"


def token_fingerprint(token: str | None) -> str:
    return fingerprint(token or "console")


def paused_reason(engine: Engine, token: str | None) -> str | None:
    """Why dispatching is paused, if it is (a 190 seen with the token in use now)."""
    with Session(engine) as session:
        flag = get_flag(session, PAUSE_FLAG)
    if flag is None:
        return None
    flagged, _, reason = flag.partition(" ")
    if flagged != token_fingerprint(token):
        return None  # a new token was configured since: try again
    return reason


def pause(session: Session, *, token_fingerprint: str, code: int | None) -> None:
    """Pause every dispatcher using this token, in the caller's transaction."""
    set_flag(
        session,
        PAUSE_FLAG,
        f"{token_fingerprint} access token rejected "
        f"by Meta (error {code}); set a new WHATSAPP_ACCESS_TOKEN",
    )


def resume(engine: Engine) -> bool:
    """Lift the pause; whether there was one."""
    with session_scope(engine) as session:
        return clear_flag(session, PAUSE_FLAG)


def _sqlite_lock_path(engine: Engine) -> Path | None:
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:":
        return None
    return Path(database + ".dispatcher.lock")


@contextmanager
def one_at_a_time_on_sqlite(
    engine: Engine, stop: threading.Event, worker: str, *, retry_seconds: float = 1.0
) -> Iterator[bool]:
    """On SQLite, one dispatcher sends at a time; others stand by until it stops or dies.

    Without PostgreSQL there is usually no Redis either, and the in-process rate limit holds
    only if a single process sends. An exclusive lock on a file beside the database, which the
    system drops when its holder dies, decides who. Yields False if stopped while waiting.
    """
    path = _sqlite_lock_path(engine)
    if path is None:
        yield True
        return
    with path.open("a") as handle:
        waiting = False
        while True:
            try:
                fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not waiting:
                    log.info(
                        "dispatcher %s: another dispatcher sends from this SQLite database; "
                        "standing by",
                        worker,
                    )
                    waiting = True
                if stop.wait(retry_seconds):
                    yield False
                    return
        try:
            yield True
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
