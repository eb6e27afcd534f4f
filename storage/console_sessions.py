"""Console sessions kept on the server: started at sign-in, found by the hash of the cookie's
token, ended by sign-out, by an admin, or by the idle and absolute limits.

Ending a session deletes its row, so every worker, and every copy of the cookie, sees it end at
once. Functions take the caller's session and act in its transaction.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy import delete, or_
from sqlmodel import Session, col, select

from storage.models import ConsoleSession

USER_AGENT_MAX = 256


@dataclass(frozen=True, slots=True)
class SessionLimits:
    idle: timedelta  # unused this long: ended
    lifetime: timedelta  # this long after sign-in: ended, however active


def token_digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    session: Session,
    *,
    username: str,
    now: datetime,
    limits: SessionLimits,
    address: str | None = None,
    user_agent: str | None = None,
) -> tuple[str, ConsoleSession]:
    """A new session for username: the token for its cookie, and its row."""
    prune_sessions(session, now=now, limits=limits)  # sign-ins are rare: a fine time to sweep
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id=token_digest(token),
        username=username,
        csrf_token=secrets.token_urlsafe(32),
        created_at=now,
        last_seen_at=now,
        address=address,
        user_agent=(user_agent or "")[:USER_AGENT_MAX] or None,
    )
    session.add(row)
    session.flush()
    return token, row


def live_session(
    session: Session, *, token: str, now: datetime, limits: SessionLimits
) -> ConsoleSession | None:
    """The session the token names, if it has not ended; an expired one is removed."""
    row = session.get(ConsoleSession, token_digest(token))
    if row is None:
        return None
    if _expired(row, now, limits):
        session.delete(row)
        session.flush()
        return None
    return row


def _expired(row: ConsoleSession, now: datetime, limits: SessionLimits) -> bool:
    return now - row.last_seen_at > limits.idle or now - row.created_at > limits.lifetime


def touch_session(session: Session, *, session_id: str, seen_at: datetime) -> None:
    row = session.get(ConsoleSession, session_id)
    if row is not None:
        row.last_seen_at = seen_at
        session.add(row)


def end_session(session: Session, *, session_id: str) -> bool:
    result = session.execute(delete(ConsoleSession).where(col(ConsoleSession.id) == session_id))
    return bool(result.rowcount)  # type: ignore[attr-defined]


def end_sessions_of(session: Session, *, username: str | None) -> int:
    """End every session of username, or everyone's (None); how many ended."""
    statement = delete(ConsoleSession)
    if username is not None:
        statement = statement.where(col(ConsoleSession.username) == username)
    return session.execute(statement).rowcount or 0  # type: ignore[attr-defined]


def active_sessions(
    session: Session, *, now: datetime, limits: SessionLimits
) -> list[ConsoleSession]:
    """Sessions that have not ended, most recently used first."""
    rows = session.exec(
        select(ConsoleSession).order_by(col(ConsoleSession.last_seen_at).desc())
    ).all()
    return [row for row in rows if not _expired(row, now, limits)]


def prune_sessions(session: Session, *, now: datetime, limits: SessionLimits) -> int:
    result = session.execute(
        delete(ConsoleSession).where(
            or_(
                col(ConsoleSession.last_seen_at) < now - limits.idle,
                col(ConsoleSession.created_at) < now - limits.lifetime,
            )
        )
    )
    return result.rowcount or 0  # type: ignore[attr-defined]
