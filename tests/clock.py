"""Time a test moves by hand, so that leases, windows, pacing and expiry are exact, not raced.

A busy machine stretches the time between two statements of a test by any amount; an assertion
on wall-clock time then fails without a defect. Code that reads time through a clock parameter
is tested here on a clock that stands still until the test advances it.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import redis

from bot.graph.client import Transport
from bot.graph.payloads import recipient_of
from storage.kv import KeyValueStore, MemoryStore, RedisStore
from storage.types import utcnow


class ManualClock:
    """One timeline, read as monotonic seconds (limiters, stores) or as UTC (the outbox)."""

    def __init__(self, start: datetime | None = None) -> None:
        self._start = start or utcnow()
        # Whole microseconds (a datetime's resolution), so that steps add up exactly: 5.999 s
        # and then 0.001 s are 6 s, as a deadline 6 s away expects.
        self._micros = 0
        self._lock = threading.Lock()

    def monotonic(self) -> float:
        with self._lock:
            return 1000.0 + self._micros / 1_000_000  # any origin: only differences count

    __call__ = monotonic

    def utcnow(self) -> datetime:
        with self._lock:
            return self._start + timedelta(microseconds=self._micros)

    def advance(self, seconds: float) -> None:
        with self._lock:
            self._micros += round(seconds * 1_000_000)

    def sleep(self, seconds: float) -> None:
        """A sleep that moves the clock instead of waiting (right for one sleeper at a time)."""
        self.advance(seconds)


class StoreTime:
    """Moves a coordination store's time forward.

    A MemoryStore reads a ManualClock. Redis keeps its own clock, which a test cannot move;
    there every key of the store's prefix has its time to live shortened instead, and a key
    whose time runs out is deleted, as Redis would have.
    """

    def __init__(self, store: KeyValueStore, clock: ManualClock | None = None) -> None:
        self.store = store
        self.clock = clock

    @classmethod
    def of(cls, store: KeyValueStore) -> tuple[KeyValueStore, StoreTime]:
        """A store whose time a test moves: a MemoryStore on a new clock, or this Redis store."""
        if isinstance(store, RedisStore):
            return store, cls(store)
        clock = ManualClock()
        fresh = MemoryStore(store.prefix, clock=clock)
        return fresh, cls(fresh, clock)

    def advance(self, seconds: float) -> None:
        if self.clock is not None:
            self.clock.advance(seconds)
            return
        assert isinstance(self.store, RedisStore)
        connection: redis.Redis = self.store.connection
        for key in connection.scan_iter(self.store.prefix + "*"):
            left = connection.pttl(key)
            if left < 0:  # no expiry, or gone meanwhile
                continue
            if left <= seconds * 1000:
                connection.delete(key)
            else:
                connection.pexpire(key, left - int(seconds * 1000))


class SlotTimes:
    """A dispatcher's rate slots, timed on a clock that stands still, exactly and at no cost.

    Give the dispatcher `sleep` and `transport(...)`, and its limiter the same clock: a sender
    thread told to wait notes when its slot comes (the clock's time plus the wait) instead of
    waiting, and the transport records that time with the request it makes next. The times are
    what the limiter granted, whatever the speed of the machine; a send made without taking a
    slot, or before its wait, is recorded at the clock's time and shows as too early.
    """

    def __init__(self, clock: ManualClock) -> None:
        self.clock = clock
        self._local = threading.local()
        self._lock = threading.Lock()
        self.sent: list[tuple[str | None, float]] = []  # (recipient, when its slot came)

    def sleep(self, seconds: float) -> None:
        self._local.due = self.clock() + seconds

    def transport(self, inner: Transport) -> Transport:
        return _TimedTransport(inner, self)

    def times(self) -> list[float]:
        with self._lock:
            return sorted(at for _, at in self.sent)

    def note(self, recipient: str | None) -> None:
        due: float | None = getattr(self._local, "due", None)
        self._local.due = None  # a slot is used once
        with self._lock:
            self.sent.append((recipient, self.clock() if due is None else due))


@dataclass(frozen=True, slots=True)
class _TimedTransport:
    inner: Transport
    slots: SlotTimes

    def send(self, phone_number_id: str, payload: dict[str, Any]) -> str:
        self.slots.note(recipient_of(payload))
        return self.inner.send(phone_number_id, payload)

    def mark_read(self, phone_number_id: str, message_id: str) -> None:
        self.slots.note(None)
        self.inner.mark_read(phone_number_id, message_id)
