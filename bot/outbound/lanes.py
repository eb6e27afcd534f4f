"""Per-recipient lanes: one recipient's messages leave in order, different recipients side by side.

Each lane is a queue of claimed rows for one recipient, run by one sending thread until it is
empty; rows claimed later for a recipient already being sent to join its queue. A thread that
empties a lane takes the next lane waiting, so a batch costs a task per thread, not per lane.
The threads report each attempt to a list the dispatcher's own thread takes and settles in
groups; it is woken for a group's first attempt and when everything in flight has reported,
not for every attempt.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor

from bot.graph.errors import Slowdown, slowdown
from bot.graph.payloads import recipient_of
from bot.outbound.attempt import Attempt, AttemptKind, Batch, Sender
from bot.outbound.halt import Halt, HaltState
from storage.outbox import Claimed

Report = Callable[[Attempt], None]


def lane_key(row: Claimed) -> object:
    """Rows with the same key leave one after another, in claim order: the recipient."""
    return recipient_of(row.payload) or ("row", row.outbox_id)


def paces(attempt: Attempt) -> bool:
    """Whether the recipient is now paced (by us or by Meta): the rest of its lane waits too."""
    return attempt.kind is AttemptKind.PACED or (
        attempt.error is not None and Slowdown.RECIPIENT in slowdown(attempt.error)
    )


class Lanes:
    """The lanes of one dispatcher, the threads that run them, and the attempts they report."""

    def __init__(self, *, sender: Sender, halt: HaltState, concurrency: int) -> None:
        self._sender = sender
        self._halt = halt
        self._concurrency = concurrency
        self._pool: ThreadPoolExecutor | None = None
        # Rows waiting or being sent, by lane; a lane ends when its queue is empty.
        self._lanes: dict[object, deque[tuple[Claimed, Batch]]] = {}
        self._waiting: deque[object] = deque()  # lanes no thread runs yet, oldest first
        self._threads = 0  # sending threads at work (each runs lanes until none waits)
        self._lock = threading.Lock()
        # Attempts reported and not yet taken; the dispatcher's thread waits on `_reported`.
        self._results: list[Attempt] = []
        self._reported = threading.Condition(threading.Lock())
        self._awaited = 0  # how many reports end the gathering of a group at once
        self.in_flight = 0  # submitted, not yet settled (the dispatcher's own thread only)

    def start(self, batch: Batch) -> None:
        """Hand rows to the sending threads: a new lane per recipient not being sent to yet,
        and a thread for each new lane while fewer than `concurrency` are at work."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="send")
        self.in_flight += len(batch.rows)
        with self._lock:
            self._waiting.extend(self._queue(batch))
            more = min(len(self._waiting), self._concurrency - self._threads)
            self._threads += more
        for _ in range(more):
            try:
                self._pool.submit(self._work)
            except RuntimeError:
                # The interpreter is exiting (a gunicorn worker stopping): concurrent.futures
                # refuses new work before atexit stops this dispatcher. Give these rows back.
                self._halt.halt(Halt.EXITING)
                self._give_back_if_no_thread_left()

    def run_here(self, batch: Batch, report: Report) -> None:
        """Send the batch in this thread, one row at a time, reporting each as it ends."""
        with self._lock:
            keys = self._queue(batch)
        for key in keys:
            self._run(key, report)

    def settle_next_group(self, interval: float, settle: Callable[[list[Attempt]], None]) -> None:
        """Wait for the next attempt, gather what else arrives within interval, and settle
        them together."""
        with self._reported:
            self._awaited = self.in_flight
            self._reported.wait_for(lambda: self._results)
            deadline = time.monotonic() + interval
            while len(self._results) < self.in_flight:
                timeout = deadline - time.monotonic()
                if timeout <= 0 or not self._reported.wait(timeout):
                    break
            group, self._results = self._results, []
            self._awaited = 0
        try:
            settle(group)
        finally:
            self.in_flight -= len(group)  # settled, or left to the lease: no longer awaited

    def shutdown(self) -> None:
        """Wait for the lanes still running to end."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _report(self, attempt: Attempt) -> None:
        with self._reported:
            self._results.append(attempt)
            reported = len(self._results)
            # Only the group's first attempt and its last awaited one wake the dispatcher.
            if reported == 1 or reported == self._awaited:
                self._reported.notify()

    def _give_back_if_no_thread_left(self) -> None:
        """A thread could not be started: if none is at work, report the waiting lanes' rows
        unsent (a thread at work would take them, and find the dispatcher halted)."""
        with self._lock:
            self._threads -= 1
            if self._threads > 0:
                return
            unsent = [row for key in self._waiting for row, _ in self._lanes.pop(key)]
            self._waiting.clear()
        for row in unsent:
            self._report(Attempt(row, AttemptKind.SKIPPED, reason="shutting down"))

    def _queue(self, batch: Batch) -> list[object]:
        """Append each row to its recipient's lane; the keys of the lanes that are new.
        The caller holds the lock."""
        started = []
        for row in batch.rows:
            key = lane_key(row)
            lane = self._lanes.get(key)
            if lane is None:
                self._lanes[key] = lane = deque()
                started.append(key)
            lane.append((row, batch))
        return started

    def _work(self) -> None:
        """A sending thread: run the lanes waiting, one after another, until none is left."""
        while True:
            with self._lock:
                if not self._waiting:
                    self._threads -= 1
                    return
                key = self._waiting.popleft()
            try:
                self._run(key, self._report)
            except BaseException:
                with self._lock:
                    self._threads -= 1  # a thread's place for the lanes still waiting
                raise

    def _run(self, key: object, report: Report) -> None:
        """Send a lane's rows one after another, until its queue is empty."""
        paced = False
        while True:
            with self._lock:
                lane = self._lanes[key]
                if not lane:
                    del self._lanes[key]
                    return
                row, batch = lane.popleft()
            # Once a recipient is paced (a 131056 now or before), the rest of its lane waits
            # too, so that its messages still leave in order.
            attempt = Attempt(row, AttemptKind.PACED) if paced else self._sender.attempt(row, batch)
            paced = paces(attempt)
            report(attempt)
