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
from datetime import timedelta

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

log = logging.getLogger(__name__)


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
        heartbeat_seconds: float = HEARTBEAT_SECONDS,
        sleep: Callable[[float], None] = time.sleep,
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
        self.stats = DispatchStats()
        self.halt = HaltState()
        # How the dispatchers running count each other: the rate is divided among them while
        # Redis is away.
        self.heartbeat = Heartbeat(
            engine=engine, worker=self.worker, limiter=limiter, interval=heartbeat_seconds
        )
        self._consent = ConsentCheck(
            engine=engine, suppression_key=suppression_key, marketing=catalog.marketing_ids
        )
        sender = Sender(transport=transport, limiter=limiter, halt=self.halt, sleep=sleep)
        self._lanes = Lanes(sender=sender, halt=self.halt, concurrency=concurrency)
        self._settler = Settler(
            engine=engine,
            limiter=limiter,
            catalog=catalog,
            worker=self.worker,
            token_fingerprint=token_fingerprint(token),
            stats=self.stats,
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
        with one_at_a_time_on_sqlite(self.engine, stop, self.worker) as my_turn:
            if my_turn:
                self._loop(wake)

    def _loop(self, wake: threading.Event | None) -> None:
        log.info("dispatcher %s started", self.worker)
        while True:
            self.heartbeat.due()
            claimed = 0
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
            if wake is not None:
                wake.wait(self.poll_seconds)
                wake.clear()
            else:
                self.halt.wait(self.poll_seconds)
        self.shutdown()

    def _top_up(self, limit: int) -> int:
        """Claim up to limit rows and start sending them; how many."""
        try:
            claimed = self._claim(limit)
        except DBAPIError as exc:
            log.error("dispatcher: storage unavailable (%s); retrying", exc.__class__.__name__)
            if not self._lanes.in_flight:
                self.halt.wait(2.0)
            return 0
        except Exception:
            # Whatever it was, the thread must not die: rows held come back when their
            # lease ends.
            log.exception("dispatcher: claiming failed; retrying")
            if not self._lanes.in_flight:
                self.halt.wait(2.0)
            return 0
        if claimed:
            self._lanes.start(self._batch(claimed))
        return len(claimed)

    def _claim(self, limit: int) -> list[Claimed]:
        if self.paused_reason() is not None:
            return []
        with session_scope(self.engine) as session:
            return claim_due(session, worker=self.worker, limit=limit, lease=self.lease)

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
