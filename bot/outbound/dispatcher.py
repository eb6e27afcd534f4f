"""Sends what the outbox holds: claims due rows, calls the Graph API, settles each row.

Claimed rows go into lanes, one per recipient, sent side by side (one recipient's messages leave
in order) under the shared rate limit, after a consent check at send time; the outcomes are
committed in groups. While the threads send, the loop claims more before they run dry, so a
batch's last slow answers never leave the others idle. Retries follow Meta's error table
(META.md): backoff with jitter for temporary errors, never for permanent ones; 131050 also
withdraws the marketing categories; 190 pauses every dispatcher until the app runs with another
token. Sending is at least once: only a crash between Meta's answer and the commit of its group
can send a row twice. On PostgreSQL any number of dispatchers run; on SQLite one at a time.
"""

from __future__ import annotations

import logging
import os
import queue
import socket
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.graph.client import Transport
from bot.graph.errors import (
    GraphError,
    GraphTransportError,
    Outcome,
    Slowdown,
    classify,
    slowdown,
)
from bot.outbound.attempt import Attempt, AttemptKind
from bot.outbound.pause import one_at_a_time_on_sqlite, paused_reason, token_fingerprint
from bot.outbound.settle import DispatchStats, Settler
from flows.catalog import Catalog
from storage.db import session_scope
from storage.outbox import (
    Claimed,
    claim_due,
    refused_now,
    release,
)
from storage.ratelimit import RateLimiter

log = logging.getLogger(__name__)

# How stale the send-time consent check may be: it is read per batch, again when this old.
CONSENT_CHECK_MAX_AGE_SECONDS = 0.2


class _Batch:
    """One claimed batch: when its lease started, and its send-time consent check."""

    def __init__(self, dispatcher: Dispatcher, rows: list[Claimed]) -> None:
        self.rows = rows
        self.started = time.monotonic()
        self._dispatcher = dispatcher
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._refused: dict[int, str] = {}

    def lease_running_out(self) -> bool:
        # A send that starts in the second half of the lease could outlast it, and another
        # dispatcher would then claim the row and send it a second time.
        return time.monotonic() - self.started > self._dispatcher.lease.total_seconds() / 2

    def refusal(self, row: Claimed) -> str | None:
        """Why this row may not be sent now (consent withdrawn, number erased), if so.

        Read for the whole batch at once, and again once older than CONSENT_CHECK_MAX_AGE_SECONDS:
        the check stays close to the send without a query per message.
        """
        if row.kind != "message" or row.contact_id is None:
            return None
        if time.monotonic() - self._checked_at > CONSENT_CHECK_MAX_AGE_SECONDS:
            # The first check of a batch waits for the read; later ones let one thread read
            # again while the others go on with the previous answer, a moment older.
            first = self._checked_at == float("-inf")
            if self._lock.acquire(blocking=first):
                try:
                    if time.monotonic() - self._checked_at > CONSENT_CHECK_MAX_AGE_SECONDS:
                        with Session(self._dispatcher.engine) as session:
                            refused = refused_now(
                                session,
                                self.rows,
                                suppression_key=self._dispatcher.suppression_key,
                                marketing=self._dispatcher.catalog.marketing_ids,
                            )
                        self._refused, self._checked_at = refused, time.monotonic()
                finally:
                    self._lock.release()
        return self._refused.get(row.outbox_id)


def _lane_key(row: Claimed) -> object:
    """Rows with the same key leave one after another, in claim order: the recipient."""
    return row.payload.get("to") or ("row", row.outbox_id)


class Dispatcher:
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
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.limiter = limiter
        self.catalog = catalog
        self.suppression_key = suppression_key
        self.token = token
        self.fingerprint = token_fingerprint(token)
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
        self.sleep = sleep
        self.stats = DispatchStats()
        self._settler = Settler(
            engine=engine,
            limiter=limiter,
            catalog=catalog,
            worker=self.worker,
            token_fingerprint=self.fingerprint,
            stats=self.stats,
        )
        self._pool: ThreadPoolExecutor | None = None
        self._stop: threading.Event | None = None
        self._halt = threading.Event()  # a 190 was seen: send nothing more until all settle
        # Rows waiting or being sent, by lane; a lane's thread takes them in order and ends
        # when its queue is empty. Rows claimed for a lane already running join its queue.
        self._lanes: dict[object, deque[tuple[Claimed, _Batch]]] = {}
        self._lanes_lock = threading.Lock()
        self._results: queue.Queue[Attempt] = queue.Queue()
        self._in_flight = 0  # submitted, not yet settled (the dispatcher's own thread only)
        self._closing = False  # the process is exiting: claim nothing more

    # --- the loop ---------------------------------------------------------------------------

    def paused_reason(self) -> str | None:
        return paused_reason(self.engine, self.token)

    def run_once(self) -> int:
        """Claim one batch, send it and settle every row; the number of rows handled."""
        claimed = self._claim(self.batch_size)
        if not claimed:
            return 0
        if self.concurrency <= 1:  # one at a time, each settled at once (the terminal chat)
            for key in self._queue_in_lanes(claimed):
                self._run_lane(key, lambda attempt: self._settler.settle([attempt]))
            return len(claimed)
        self._submit(claimed)
        while self._in_flight:
            self._settle_next_group()
        self._halt.clear()
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
        self._stop = stop
        with one_at_a_time_on_sqlite(self.engine, stop, self.worker) as my_turn:
            if my_turn:
                self._loop(stop, wake)

    def _loop(self, stop: threading.Event, wake: threading.Event | None) -> None:
        log.info("dispatcher %s started", self.worker)
        while True:
            claimed = 0
            # Claim more while the threads still have half a batch to send, not after.
            room = self.batch_size - self._in_flight
            stopping = stop.is_set() or self._closing or self._halt.is_set()
            if room >= self.batch_size / 2 and not stopping:
                claimed = self._top_up(stop, room)
            if self._in_flight:
                self._settle_next_group()
                continue
            self._halt.clear()  # everything settled: a 190 is now a flag paused_reason sees
            if stop.is_set():
                break
            if claimed:
                continue
            if wake is not None:
                wake.wait(self.poll_seconds)
                wake.clear()
            else:
                stop.wait(self.poll_seconds)
        self.shutdown()

    def _top_up(self, stop: threading.Event, limit: int) -> int:
        """Claim up to limit rows and start sending them; how many."""
        try:
            claimed = self._claim(limit)
        except DBAPIError as exc:
            log.error("dispatcher: storage unavailable (%s); retrying", exc.__class__.__name__)
            if not self._in_flight:
                stop.wait(2.0)
            return 0
        except Exception:
            # Whatever it was, the thread must not die: rows held come back when their
            # lease ends.
            log.exception("dispatcher: claiming failed; retrying")
            if not self._in_flight:
                stop.wait(2.0)
            return 0
        if claimed:
            self._submit(claimed)
        return len(claimed)

    def _claim(self, limit: int) -> list[Claimed]:
        if self.paused_reason() is not None:
            return []
        with session_scope(self.engine) as session:
            return claim_due(session, worker=self.worker, limit=limit, lease=self.lease)

    def _submit(self, claimed: list[Claimed]) -> None:
        """Hand rows to the sending threads: a new lane per recipient not being sent to yet."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="send")
        started = self._queue_in_lanes(claimed)
        self._in_flight += len(claimed)
        for key in started:
            try:
                self._pool.submit(self._run_lane, key, self._results.put)
            except RuntimeError:
                # The interpreter is exiting (a gunicorn worker stopping): concurrent.futures
                # refuses new work before atexit stops this dispatcher. Give these rows back.
                self._closing = True
                with self._lanes_lock:
                    unsent = self._lanes.pop(key)
                for row, _ in unsent:
                    self._results.put(Attempt(row, AttemptKind.SKIPPED, reason="shutting down"))

    def _queue_in_lanes(self, claimed: list[Claimed]) -> list[object]:
        """Append each row to its recipient's lane; the keys of the lanes that are new."""
        batch = _Batch(self, claimed)
        started = []
        with self._lanes_lock:
            for row in claimed:
                key = _lane_key(row)
                lane = self._lanes.get(key)
                if lane is None:
                    self._lanes[key] = lane = deque()
                    started.append(key)
                lane.append((row, batch))
        return started

    def _settle_next_group(self) -> None:
        """Wait for the next outcome, gather what else arrives within settle_interval, and
        commit them together."""
        group = [self._results.get()]
        deadline = time.monotonic() + self.settle_interval
        while len(group) < self._in_flight:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                group.append(self._results.get(timeout=timeout))
            except queue.Empty:
                break
        try:
            self._settler.settle(group)
        finally:
            self._in_flight -= len(group)  # settled, or left to the lease: no longer awaited

    def shutdown(self) -> None:
        """Finish the sends in progress, then give back every row still held."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        try:
            with session_scope(self.engine) as session:
                released = release(session, worker=self.worker)
        except DBAPIError:
            log.error("dispatcher %s could not release its rows; their lease will", self.worker)
            return
        if released:
            log.info("dispatcher %s released %d rows on shutdown", self.worker, released)

    # --- sending (worker threads: no database writes here) ----------------------------------

    def _halted(self) -> bool:
        return self._halt.is_set() or (self._stop is not None and self._stop.is_set())

    def _run_lane(self, key: object, report: Callable[[Attempt], None]) -> None:
        """Send a lane's rows one after another, until its queue is empty."""
        paced = False
        while True:
            with self._lanes_lock:
                lane = self._lanes[key]
                if not lane:
                    del self._lanes[key]
                    return
                row, batch = lane.popleft()
            attempt = self._attempt_in_lane(row, batch, paced)
            paced = self._paces(attempt)
            report(attempt)

    def _attempt_in_lane(self, row: Claimed, batch: _Batch, paced: bool) -> Attempt:
        # Once a recipient is paced (a 131056 now or before), the rest of its lane waits too,
        # so that its messages still leave in order.
        return Attempt(row, AttemptKind.PACED) if paced else self._attempt_guarded(row, batch)

    @staticmethod
    def _paces(attempt: Attempt) -> bool:
        return attempt.kind is AttemptKind.PACED or (
            attempt.error is not None and Slowdown.RECIPIENT in slowdown(attempt.error)
        )

    def _attempt_guarded(self, row: Claimed, batch: _Batch) -> Attempt:
        try:
            return self._attempt(row, batch)
        except Exception as exc:
            # Not the Graph API's doing (storage or Redis unreachable): give the row back.
            # Only the type: a storage error's text would quote the SQL and its parameters.
            log.warning(
                "dispatcher: could not attempt outbox row %s: %s", row.outbox_id, type(exc).__name__
            )
            return Attempt(row, AttemptKind.SKIPPED, reason=type(exc).__name__)

    def _attempt(self, row: Claimed, batch: _Batch) -> Attempt:
        if self._halted():
            return Attempt(row, AttemptKind.SKIPPED, reason="stopping")
        refusal = batch.refusal(row)
        if refusal is not None:
            return Attempt(row, AttemptKind.REFUSED, reason=refusal)
        wait = self.limiter.acquire(row.payload.get("to"))
        if wait is None:
            return Attempt(row, AttemptKind.PACED)
        if wait > 0:
            self.sleep(wait)
        if self._halted() or batch.lease_running_out():
            return Attempt(row, AttemptKind.SKIPPED, reason="stopping or lease running out")
        try:
            if row.kind == "read_receipt":
                self.transport.mark_read(row.phone_number_id, row.payload["message_id"])
                wamid = None
            else:
                wamid = self.transport.send(row.phone_number_id, row.payload)
        except GraphError as error:
            if classify(error) is Outcome.PAUSE:
                self._halt.set()
            return Attempt(row, AttemptKind.ERROR, error=error)
        except Exception as exc:
            # A transport fault we do not know: retried with backoff, and failed in the end.
            return Attempt(row, AttemptKind.ERROR, error=GraphTransportError.from_exception(exc))
        return Attempt(row, AttemptKind.SENT, wamid=wamid)
