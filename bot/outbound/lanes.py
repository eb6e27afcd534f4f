"""Per-recipient lanes: one recipient's messages leave in order, different recipients side by side.

Each lane is a queue of claimed rows for one recipient, run by one thread of the pool until it
is empty; rows claimed later for a recipient already being sent to join its queue. The threads
report each attempt to a queue the dispatcher's own thread reads and settles in groups.
"""

from __future__ import annotations

import queue
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
        # Rows waiting or being sent, by lane; a lane's thread takes them in order and ends
        # when its queue is empty.
        self._lanes: dict[object, deque[tuple[Claimed, Batch]]] = {}
        self._lock = threading.Lock()
        self._results: queue.Queue[Attempt] = queue.Queue()
        self.in_flight = 0  # submitted, not yet settled (the dispatcher's own thread only)

    def start(self, batch: Batch) -> None:
        """Hand rows to the sending threads: a new lane per recipient not being sent to yet."""
        if self._pool is None:
            self._pool = ThreadPoolExecutor(self._concurrency, thread_name_prefix="send")
        started = self._queue(batch)
        self.in_flight += len(batch.rows)
        for key in started:
            try:
                self._pool.submit(self._run, key, self._results.put)
            except RuntimeError:
                # The interpreter is exiting (a gunicorn worker stopping): concurrent.futures
                # refuses new work before atexit stops this dispatcher. Give these rows back.
                self._halt.halt(Halt.EXITING)
                with self._lock:
                    unsent = self._lanes.pop(key)
                for row, _ in unsent:
                    self._results.put(Attempt(row, AttemptKind.SKIPPED, reason="shutting down"))

    def run_here(self, batch: Batch, report: Report) -> None:
        """Send the batch in this thread, one row at a time, reporting each as it ends."""
        for key in self._queue(batch):
            self._run(key, report)

    def settle_next_group(self, interval: float, settle: Callable[[list[Attempt]], None]) -> None:
        """Wait for the next attempt, gather what else arrives within interval, and settle
        them together."""
        group = [self._results.get()]
        deadline = time.monotonic() + interval
        while len(group) < self.in_flight:
            timeout = deadline - time.monotonic()
            if timeout <= 0:
                break
            try:
                group.append(self._results.get(timeout=timeout))
            except queue.Empty:
                break
        try:
            settle(group)
        finally:
            self.in_flight -= len(group)  # settled, or left to the lease: no longer awaited

    def shutdown(self) -> None:
        """Wait for the lanes still running to end."""
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None

    def _queue(self, batch: Batch) -> list[object]:
        """Append each row to its recipient's lane; the keys of the lanes that are new."""
        started = []
        with self._lock:
            for row in batch.rows:
                key = lane_key(row)
                lane = self._lanes.get(key)
                if lane is None:
                    self._lanes[key] = lane = deque()
                    started.append(key)
                lane.append((row, batch))
        return started

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
