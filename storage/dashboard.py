"""The figures behind the console's dashboard: consent decisions per category and day, the words
of the withdrawals, sends that failed and the consent webhook backlog, each in one grouped query.

Counts only: no contact is named in anything returned here.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime

from sqlalchemy import Date, and_, case, cast, exists, func, or_, true
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from storage.db import is_postgres
from storage.models import ConsentEvent, ConsentWebhook, Message

GRANTED = "granted"
WITHDRAWN = "withdrawn"  # a "no" after the category had been granted: an opt-out
DECLINED = "declined"  # a "no" to a category never granted before


@dataclass(frozen=True, slots=True)
class DecisionCount:
    category: str
    day: date
    kind: str  # GRANTED, WITHDRAWN or DECLINED
    count: int


@dataclass(frozen=True, slots=True)
class WithdrawalWords:
    """Withdrawals that were recorded with the same source and text (one STOP is like another)."""

    source: str
    text: str
    count: int


@dataclass(frozen=True, slots=True)
class FailureCount:
    code: int | None
    title: str | None  # the latest of Meta's titles for that code
    count: int


@dataclass(frozen=True, slots=True)
class WebhookGroup:
    """Consent webhook rows (C29) still waiting for a 2xx, alike in state and in last error."""

    failing: bool  # delivered at least once without a 2xx
    state: str  # "due" | "scheduled" | "claimed", as in the outbox
    error: str | None  # the last delivery's error ("HTTP 500", an exception's name)
    rows: int
    failed_attempts: int
    oldest_at: datetime  # when the oldest of them was queued


def _day(session: Session, column: ColumnElement[datetime]) -> ColumnElement[date]:
    """The UTC calendar day of a stored time, on either database."""
    if is_postgres(session.get_bind()):  # type: ignore[arg-type]
        return cast(func.timezone("UTC", column), Date)
    return func.date(column)  # SQLite keeps times as UTC text


def _as_date(value: date | str) -> date:
    return value if isinstance(value, date) else date.fromisoformat(str(value)[:10])


def _kind() -> ColumnElement[str]:
    earlier = aliased(ConsentEvent)
    granted_before = exists().where(
        earlier.contact_id == ConsentEvent.contact_id,
        earlier.category == ConsentEvent.category,
        earlier.granted == true(),
        col(earlier.id) < col(ConsentEvent.id),  # recorded before this decision
    )
    return case((col(ConsentEvent.granted), GRANTED), (granted_before, WITHDRAWN), else_=DECLINED)


def decisions_by_day(session: Session, *, since: datetime) -> list[DecisionCount]:
    """Consent decisions from since on, per category, UTC day and kind."""
    day = _day(session, col(ConsentEvent.occurred_at)).label("day")
    kind = _kind().label("kind")
    rows = session.execute(
        select(ConsentEvent.category, day, kind, func.count())
        .where(col(ConsentEvent.occurred_at) >= since)
        .group_by(ConsentEvent.category, day, kind)
    ).all()
    return [DecisionCount(category, _as_date(d), k, n) for category, d, k, n in rows]


def withdrawal_words(session: Session, *, since: datetime) -> list[WithdrawalWords]:
    """Withdrawals from since on, grouped by source and the text they were recorded with."""
    rows = session.execute(
        select(ConsentEvent.source, func.max(ConsentEvent.text), func.count())
        .where(col(ConsentEvent.occurred_at) >= since, _kind() == WITHDRAWN)
        .group_by(ConsentEvent.source, ConsentEvent.text_version)
    ).all()
    return [WithdrawalWords(source, text, count) for source, text, count in rows]


def failures_by_code(session: Session, *, since: datetime) -> list[FailureCount]:
    """Messages that failed from since on, per Meta error code, most frequent first."""
    count = func.count().label("count")
    rows = session.execute(
        select(Message.error_code, func.max(Message.error_title), count)
        .where(
            col(Message.direction) == "out",
            col(Message.status) == "failed",
            col(Message.status_at) >= since,
        )
        .group_by(Message.error_code)
        .order_by(count.desc())
    ).all()
    return [FailureCount(code, title, n) for code, title, n in rows]


def webhook_backlog(session: Session, *, now: datetime) -> list[WebhookGroup]:
    """What waits to reach the business's consent webhook receiver, by state and last error.

    Unlike storage.consent_webhooks.backlog (the metrics' totals), this tells a retry that is
    due from one that waits for its backoff, and a row being sent from both.
    """
    row = ConsentWebhook
    claimed = and_(col(row.claimed_until).is_not(None), col(row.claimed_until) >= now)
    state = case((claimed, "claimed"), (col(row.due_at) <= now, "due"), else_="scheduled").label(
        "state"
    )
    failing = case(
        (or_(col(row.attempts) > 0, col(row.last_error).is_not(None)), 1), else_=0
    ).label("failing")
    rows = session.execute(
        select(
            failing,
            state,
            row.last_error,
            func.count(),
            func.coalesce(func.sum(row.attempts), 0),
            func.min(row.created_at),
        ).group_by(failing, state, row.last_error)
    ).all()
    return [
        WebhookGroup(bool(f), s, error, count, int(attempts), oldest)
        for f, s, error, count, attempts, oldest in rows
    ]
