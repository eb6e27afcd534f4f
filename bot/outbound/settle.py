"""Settling: turns attempts into database outcomes (sent, retried with backoff, failed), in groups.

A group of attempts is committed in one transaction. What Meta's error means is classify()'s
:class:`~bot.graph.errors.Outcome`, and each one is acted on here:

- ``RETRY``: due again after a backoff with jitter; :func:`~bot.graph.errors.slowdown` says what
  else to slow (``RECIPIENT``: pace that person for ``PAIR_RATE_PAUSE_SECONDS`` and wait at least
  as long; ``EVERYONE``: penalise the shared rate). Out of attempts, it fails like ``FAIL``.
- ``FAIL``: failed for good with Meta's code; it says nothing about the person.
- ``FAIL_HOLD_24H`` and ``OPTED_OUT``: failed for good, and :func:`apply_refusal` records what it
  says about the person (no marketing for a day; marketing withdrawn, source ``meta``).
- ``PAUSE``: given back unsent, its attempt not counted, and every dispatcher using this token
  pauses (:mod:`bot.outbound.pause`); the sending threads already stopped (:mod:`.attempt`).

A group that cannot be committed is tried again, then row by row, so that one bad row never
holds the others back; a row that still fails is left to its lease and sent again later.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import Enum
from typing import assert_never

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.graph.errors import (
    GraphError,
    Outcome,
    Slowdown,
    classify,
    failure_reason,
    slowdown,
)
from bot.graph.payloads import recipient_of
from bot.outbound.attempt import Attempt, AttemptKind
from bot.outbound.pause import pause
from bot.outbound.refusals import apply_refusal
from bot.wiring.logmask import mask_recipient
from flows.catalog import Catalog
from storage.db import session_scope
from storage.models import Message
from storage.outbox import Claimed, release_one, settle_failed, settle_retry, settle_sent_many
from storage.ratelimit import RateLimiter
from storage.types import utcnow

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 12
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 15 * 60
PAIR_RATE_PAUSE_SECONDS = 6.0  # Meta paces one recipient at about one message per 6 s
THROUGHPUT_PENALTY_SECONDS = 1.0
# What Meta's refusal says about the person, beyond this message (apply_refusal records it).
_CONCERNS_THE_PERSON = frozenset({Outcome.FAIL_HOLD_24H, Outcome.OPTED_OUT})

_JITTER = random.SystemRandom()


def backoff(attempts: int, rng: random.Random = _JITTER) -> float:
    """Exponential backoff with jitter (between half and all of the step), capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2**attempts))
    return rng.uniform(ceiling / 2, ceiling)


class Settled(Enum):
    """How one row was settled."""

    SENT = "sent"
    RETRIED = "retried"  # due again after a backoff, the attempt counted
    FAILED = "failed"  # for good
    CANCELLED = "cancelled"  # refused at send time: never sent
    RELEASED = "released"  # given back unsent, the attempt not counted


@dataclass(slots=True)
class DispatchStats:
    """Rows settled, by how; the repr is the line a worker prints when it stops."""

    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    released: int = 0
    # Read from other threads (tests, the CLI) while the dispatcher's thread adds.
    _lock: threading.Lock = field(
        default_factory=threading.Lock, init=False, repr=False, compare=False
    )

    def count(self, settled: Settled, rows: int = 1) -> None:
        with self._lock:
            match settled:
                case Settled.SENT:
                    self.sent += rows
                case Settled.RETRIED:
                    self.retried += rows
                case Settled.FAILED:
                    self.failed += rows
                case Settled.CANCELLED:
                    self.cancelled += rows
                case Settled.RELEASED:
                    self.released += rows
                case _:
                    assert_never(settled)

    def add(self, other: DispatchStats) -> None:
        with self._lock:
            self.sent += other.sent
            self.retried += other.retried
            self.failed += other.failed
            self.cancelled += other.cancelled
            self.released += other.released


def _advise(action: Callable[..., object], *args: object) -> None:
    """Tell the other dispatchers to slow down; if Redis is away, settle the row anyway."""
    try:
        action(*args)
    except Exception as exc:
        log.warning("dispatcher: could not share Meta's pacing: %s", type(exc).__name__)


class Settler:
    """Commits what came of attempts, a group per transaction, and counts it in the stats."""

    def __init__(
        self,
        *,
        engine: Engine,
        limiter: RateLimiter,
        catalog: Catalog,
        worker: str,
        token_fingerprint: str,
        stats: DispatchStats,
    ) -> None:
        self.engine = engine
        self.limiter = limiter
        self.catalog = catalog
        self.worker = worker
        self.token_fingerprint = token_fingerprint
        self.stats = stats

    def settle(self, group: list[Attempt]) -> None:
        tally = self._settle_with_retries(group)
        if tally is None:
            if len(group) > 1:
                # One row that cannot be settled must not hold the others back.
                for attempt in group:
                    self.settle([attempt])
                return
            log.error("dispatcher: outbox row %s left to its lease", group[0].row.outbox_id)
            return
        self.stats.add(tally)

    def _settle_with_retries(self, group: list[Attempt]) -> DispatchStats | None:
        """Commit the group's outcomes; their counts, or None if it could not be done."""
        tries = 3 if len(group) == 1 else 2
        for attempt_number in range(tries):
            try:
                return self._settle_once(group)
            except DBAPIError as exc:
                # A deadlock or a lost connection: the group is retried whole (nothing of it
                # was committed).
                log.warning(
                    "dispatcher: settling %d rows failed (%s), try %d",
                    len(group),
                    type(exc).__name__,
                    attempt_number + 1,
                )
                time.sleep(0.05 * (attempt_number + 1))
            except Exception:
                # A fault of ours, not the database's: another try would fail the same way.
                log.exception("dispatcher: settling %d rows failed", len(group))
                return None
        return None

    def _settle_once(self, group: list[Attempt]) -> DispatchStats:
        tally = DispatchStats()
        now = utcnow()
        with session_scope(self.engine) as session:
            sent = [(a.row, a.wamid) for a in group if a.kind is AttemptKind.SENT]
            moved: list[Message] = []
            settled = settle_sent_many(session, sent, worker=self.worker, now=now, moved=moved)
            tally.count(Settled.SENT, settled)
            for message in moved:  # a failed status that came before the wamid was stored
                if message.status == "failed":
                    apply_refusal(
                        session,
                        self.catalog,
                        contact_id=message.contact_id,
                        code=message.error_code,
                        message_id=message.id,
                        occurred_at=message.status_at or now,
                        wamid=message.wamid,
                    )
            for attempt in group:
                outcome = self._settle_unsent(session, attempt, now)
                if outcome is not None:
                    tally.count(outcome)
        return tally

    def _settle_unsent(self, session: Session, attempt: Attempt, now: datetime) -> Settled | None:
        """Settle one attempt that did not end sent; None for those that did (settled above)."""
        row = attempt.row
        match attempt.kind:
            case AttemptKind.SENT:
                return None
            case AttemptKind.REFUSED:
                settle_failed(
                    session,
                    row,
                    worker=self.worker,
                    code=None,
                    status="cancelled",
                    title=attempt.reason,
                    now=now,
                )
                return Settled.CANCELLED
            case AttemptKind.PACED:
                settle_retry(
                    session,
                    row,
                    worker=self.worker,
                    count_attempt=False,
                    due_at=now + timedelta(seconds=PAIR_RATE_PAUSE_SECONDS),
                    error="paced: Meta's per-recipient rate",
                )
                return Settled.RELEASED
            case AttemptKind.SKIPPED:
                release_one(session, row, worker=self.worker)
                return Settled.RELEASED
            case AttemptKind.ERROR:
                if attempt.error is None:
                    return None
                return self._settle_error(session, row, attempt.error, now)
            case _:
                assert_never(attempt.kind)

    def _settle_error(
        self, session: Session, row: Claimed, error: GraphError, now: datetime
    ) -> Settled:
        """Act on classify()'s outcome for Meta's error (META.md's send error table)."""
        outcome = classify(error)
        cause = error.code or error.http_status or type(error).__name__
        summary = f"{cause}: {error.title or error.message}"[:500]
        match outcome:
            case Outcome.RETRY if row.attempts + 1 < MAX_ATTEMPTS:
                return self._retry(session, row, error, summary, now)
            case Outcome.PAUSE:
                pause(session, token_fingerprint=self.token_fingerprint, code=error.code)
                settle_retry(
                    session, row, worker=self.worker, count_attempt=False, error=summary, due_at=now
                )
                log.error("dispatching paused: Meta rejected the access token (error 190)")
                return Settled.RELEASED
            case Outcome.RETRY | Outcome.FAIL | Outcome.FAIL_HOLD_24H | Outcome.OPTED_OUT:
                return self._fail(session, row, error, outcome, summary, now)
            case _:
                assert_never(outcome)

    def _retry(
        self, session: Session, row: Claimed, error: GraphError, summary: str, now: datetime
    ) -> Settled:
        delay = backoff(row.attempts)
        recipient = recipient_of(row.payload)
        slower = slowdown(error)
        if Slowdown.RECIPIENT in slower and recipient:
            # Meta paces each recipient; sending sooner only earns another refusal.
            _advise(self.limiter.pace, recipient, PAIR_RATE_PAUSE_SECONDS)
            delay = max(delay, PAIR_RATE_PAUSE_SECONDS)
        if Slowdown.EVERYONE in slower:
            _advise(self.limiter.penalise, THROUGHPUT_PENALTY_SECONDS)
        settle_retry(
            session, row, worker=self.worker, error=summary, due_at=now + timedelta(seconds=delay)
        )
        log.warning(
            "send to %s will be retried in %.1fs: %s", mask_recipient(recipient), delay, summary
        )
        return Settled.RETRIED

    def _fail(
        self,
        session: Session,
        row: Claimed,
        error: GraphError,
        outcome: Outcome,
        summary: str,
        now: datetime,
    ) -> Settled:
        title = failure_reason(error)
        if outcome is Outcome.RETRY:
            title = f"gave up after {MAX_ATTEMPTS} attempts: {title}"
        settle_failed(session, row, worker=self.worker, code=error.code, title=title, now=now)
        if outcome in _CONCERNS_THE_PERSON and row.contact_id is not None:
            apply_refusal(
                session,
                self.catalog,
                contact_id=row.contact_id,
                code=error.code,
                message_id=row.message_id,
                occurred_at=now,
            )
        log.warning(
            "send to %s failed for good: %s", mask_recipient(recipient_of(row.payload)), summary
        )
        return Settled.FAILED
