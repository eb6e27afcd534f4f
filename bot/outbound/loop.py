"""The dispatch loop: claims due outbox rows, hands them to the lanes, settles what comes back.

While the lanes send, the loop claims more before they run dry, so a batch's last slow answers
never leave the others idle. Sending is at least once: only a crash between Meta's answer and the
commit of its group can send a row twice. On PostgreSQL any number of dispatchers run; on SQLite
one at a time (:mod:`bot.outbound.pause`).
"""

from __future__ import annotations

import logging
import os
import socket
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from enum import Enum

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from bot.graph.client import Transport
from bot.outbound.attempt import Batch, ConsentCheck, Sender
from bot.outbound.halt import HaltState
from bot.outbound.heartbeat import HEARTBEAT_SECONDS, Heartbeat
from bot.outbound.lanes import Lanes
from bot.outbound.pause import one_at_a_time_on_sqlite, paused_reason, token_fingerprint
from bot.outbound.settle import DispatchStats, Settler
from flows.catalog import Catalog
from storage.db import session_scope
from storage.outbox import Claimed, claim_due, release
from storage.ratelimit import RateLimiter
from storage.types import utcnow

log = logging.getLogger(__name__)


class Rest(Enum):
    """How a look at the outbox ended when it left the loop with nothing to do."""

    DRAINED = "drained"  # nothing due, nothing in flight
    STALLED = "stalled"  # the claim failed (storage unreachable), nothing in flight


class Progress:
    """Where the loop stands, for whoever must wait on it rather than on the clock (tests).

    A look is one pass of the loop, a claim of due rows at its start. The loop rests after a
    look that leaves nothing in flight and claimed nothing, either because nothing was due
    (drained) or because the claim failed (stalled).
    """

    def __init__(self) -> None:
        self._changed = threading.Condition()
        self._looks = 0
        self._rested: dict[Rest, int] = dict.fromkeys(Rest, 0)  # the last look that rested so

    def look(self) -> None:
        with self._changed:
            self._looks += 1

    def rest(self, how: Rest) -> bool:
        """Record that the current look rested; whether the one before it did not."""
        with self._changed:
            busy = self._looks == 1 or max(self._rested.values()) < self._looks - 1
            self._rested[how] = self._looks
            self._changed.notify_all()
            return busy

    def wait(self, how: Rest, timeout: float) -> bool:
        """Wait until a look begun after this call rests as said; whether one did in time."""
        with self._changed:
            target = self._looks + 1
            return self._changed.wait_for(lambda: self._rested[how] >= target, timeout)


class Dispatcher:
    """Sends what the outbox holds, in a loop (`run`) or until nothing is due (`drain`)."""

    def __init__(
        self,
        *,
        engine: Engine,
        transport: Transport,
        limiter: RateLimiter,
        catalog: Catalog,
        suppression_key: bytes,
        token: str | None,
        worker_id: str | None = None,
        batch_size: int = 100,
        concurrency: int = 16,
        lease: timedelta = timedelta(seconds=60),
        settle_interval: float = 0.05,
        poll_seconds: float = 0.5,
        retry_seconds: float = 2.0,
        standby_seconds: float = 1.0,
        clock: Callable[[], datetime] = utcnow,
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.token = token
        self.worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        # Sent rows are committed in groups gathered for this long: one transaction per
        # group instead of one per message. A crash loses at most this long's settlements,
        # and those rows are sent again (at least once).
        self.settle_interval = settle_interval
        # How often an idle dispatcher looks for rows that came due (a retry's backoff ends);
        # new rows wake it at once (in process, or by NOTIFY on PostgreSQL).
        self.poll_seconds = poll_seconds
        # How long to wait before claiming again after storage refused a claim.
        self.retry_seconds = retry_seconds
        # How often a dispatcher standing by on SQLite tries the lock (bot.outbound.pause).
        self.standby_seconds = standby_seconds
        # The time written to and compared with the outbox: due times, leases, settlements.
        # Tests move it to end a lease or a pause at once; monotonic timing stays real.
        self.clock = clock
        self.stats = DispatchStats()
        self.halt = HaltState()
        self.progress = Progress()
        self._wake: threading.Event | None = None
        # How the dispatchers running count each other: the rate is divided among them while
        # Redis is away. Its period runs on monotonic, which tests move.
        self.heartbeat = Heartbeat(
            engine=engine,
            worker=self.worker,
            limiter=limiter,
            interval=heartbeat_seconds,
            clock=monotonic,
        )
        self._consent = ConsentCheck(
            engine=engine, suppression_key=suppression_key, marketing=catalog.marketing_ids
        )
        # sleep: how the threads wait for a rate slot, and between tries to settle a group.
        sender = Sender(transport=transport, limiter=limiter, halt=self.halt, sleep=sleep)
        self._lanes = Lanes(sender=sender, halt=self.halt, concurrency=concurrency)
        self._settler = Settler(
            engine=engine,
            limiter=limiter,
            catalog=catalog,
            worker=self.worker,
            token_fingerprint=token_fingerprint(token),
            stats=self.stats,
            clock=clock,
            sleep=sleep,
        )

    def paused_reason(self) -> str | None:
        return paused_reason(self.engine, self.token)

    def run_once(self) -> int:
        """Claim one batch, send it and settle every row; the number of rows handled."""
        claimed = self._claim(self.batch_size)
        if not claimed:
            return 0
        if self.concurrency <= 1:  # one at a time, each settled at once (the terminal chat)
            self._lanes.run_here(self._batch(claimed), lambda a: self._settler.settle([a]))
            return len(claimed)
        self._lanes.start(self._batch(claimed))
        while self._lanes.in_flight:
            self._lanes.settle_next_group(self.settle_interval, self._settler.settle)
        self.halt.all_settled()
        return len(claimed)

    def drain(self, max_rounds: int = 1000) -> int:
        """Send everything due now (tests, the terminal chat)."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            if not handled:
                break
            total += handled
        return total

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Loop until stop is set, then give back whatever is held."""
        self.halt.watch(stop)
        self._wake = wake
        with one_at_a_time_on_sqlite(
            self.engine, stop, self.worker, retry_seconds=self.standby_seconds
        ) as my_turn:
            if my_turn:
                self._loop(wake)

    def wait_drained(self, timeout: float) -> bool:
        """Wait until a look begun after this call finds nothing due and nothing in flight:
        every row due at the call is then settled, or held by another dispatcher."""
        self._nudge()
        return self.progress.wait(Rest.DRAINED, timeout)

    def wait_stalled(self, timeout: float) -> bool:
        """Wait until a look begun after this call fails to claim with nothing in flight."""
        self._nudge()
        return self.progress.wait(Rest.STALLED, timeout)

    def _nudge(self) -> None:
        # Out of its idle wait at once, rather than at the next poll. Without a wake event
        # the next look comes within poll_seconds.
        if self._wake is not None:
            self._wake.set()

    def _loop(self, wake: threading.Event | None) -> None:
        log.info("dispatcher %s started", self.worker)
        while True:
            self.progress.look()
            self.heartbeat.due()
            claimed: int | None = 0
            # Claim more while the threads still have half a batch to send, not after.
            room = self.batch_size - self._lanes.in_flight
            if room >= self.batch_size / 2 and self.halt.claims():
                claimed = self._top_up(room)
            if self._lanes.in_flight:
                self._lanes.settle_next_group(self.settle_interval, self._settler.settle)
                continue
            self.halt.all_settled()
            if self.halt.stopping():
                break
            if claimed:
                continue
            if self.progress.rest(Rest.STALLED if claimed is None else Rest.DRAINED):
                log.debug("dispatcher %s: nothing to send; waiting", self.worker)
            if wake is not None:
                wake.wait(self.poll_seconds)
                wake.clear()
            else:
                self.halt.wait(self.poll_seconds)
        self.shutdown()

    def _top_up(self, limit: int) -> int | None:
        """Claim up to limit rows and start sending them; how many, or None if claiming failed."""
        try:
            claimed = self._claim(limit)
        except DBAPIError as exc:
            log.error("dispatcher: storage unavailable (%s); retrying", exc.__class__.__name__)
            if not self._lanes.in_flight:
                self.halt.wait(self.retry_seconds)
            return None
        except Exception:
            # Whatever it was, the thread must not die: rows held come back when their
            # lease ends.
            log.exception("dispatcher: claiming failed; retrying")
            if not self._lanes.in_flight:
                self.halt.wait(self.retry_seconds)
            return None
        if claimed:
            self._lanes.start(self._batch(claimed))
        return len(claimed)

    def _claim(self, limit: int) -> list[Claimed]:
        if self.paused_reason() is not None:
            return []
        with session_scope(self.engine) as session:
            return claim_due(
                session, worker=self.worker, limit=limit, lease=self.lease, now=self.clock()
            )

    def _batch(self, claimed: list[Claimed]) -> Batch:
        return Batch(claimed, check=self._consent, lease=self.lease)

    def shutdown(self) -> None:
        """Finish the sends in progress, then give back every row still held."""
        self._lanes.shutdown()
        self.heartbeat.stop()
        try:
            with session_scope(self.engine) as session:
                released = release(session, worker=self.worker)
        except DBAPIError:
            log.error("dispatcher %s could not release its rows; their lease will", self.worker)
            return
        if released:
            log.info("dispatcher %s released %d rows on shutdown", self.worker, released)
