"""Dispatchers count each other through the database, so a rate kept without Redis is shared.

Each running dispatcher writes its heartbeat every HEARTBEAT_SECONDS and reads how many beat
within the last MISSED_BEATS periods; the limiter gives each its share of the configured rate
for the time Redis does not answer. The database is the count's source because it must answer
anyway for anything to be sent. A dispatcher that stops removes its heartbeat; one that dies is
no longer counted after MISSED_BEATS periods, and the others take back its share.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.engine import Engine

from storage.control import beat, forget, live_dispatchers
from storage.db import session_scope, storage_unavailable
from storage.ratelimit import RateLimiter
from storage.types import utcnow

log = logging.getLogger(__name__)

HEARTBEAT_SECONDS = 5.0
MISSED_BEATS = 3  # two missed beats (a long pause, a slow database) are not yet death


class Heartbeat:
    def __init__(
        self,
        *,
        engine: Engine,
        worker: str,
        limiter: RateLimiter,
        interval: float = HEARTBEAT_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.engine = engine
        self.worker = worker
        self.limiter = limiter
        self.interval = interval
        self.alive_for = timedelta(seconds=MISSED_BEATS * interval)
        self._clock = clock
        self._next = 0.0
        self.dispatchers = 1

    def due(self) -> None:
        """Beat if a period has passed since the last beat (the loop calls this every turn)."""
        if self._clock() >= self._next:
            self.beat()

    def beat(self) -> None:
        self._next = self._clock() + self.interval
        now = utcnow()
        try:
            with session_scope(self.engine) as session:
                beat(session, worker=self.worker, now=now)
            with session_scope(self.engine) as session:
                counted = live_dispatchers(session, since=now - self.alive_for)
        except Exception as exc:
            # The last count stands; storage being away also stops claiming, so nothing is sent.
            if not storage_unavailable(exc):
                log.exception("dispatcher heartbeat failed")
            return
        self.dispatchers = max(1, counted)
        self.limiter.share_among(self.dispatchers)

    def stop(self) -> None:
        try:
            with session_scope(self.engine) as session:
                forget(session, worker=self.worker)
        except Exception as exc:
            if not storage_unavailable(exc):
                log.exception("dispatcher heartbeat could not be removed; it will age out")
