"""Fast, forgettable coordination: Redis when configured, else an in-process store.

Nothing here is a source of truth. If it forgets everything, the database's unique keys still
stop double effects; it only saves work and coordinates processes.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Protocol

import redis

DEFAULT_PREFIX = "optin:"


class KeyValueStore(Protocol):
    prefix: str

    def add(self, key: str, ttl_seconds: float) -> bool:
        """Set key if absent (SET NX with expiry); True if this call set it."""

    def delete(self, key: str) -> None: ...

    def incr(self, key: str, ttl_seconds: float) -> int:
        """Add one to a counter that expires ttl_seconds after it was started; the new count."""

    def counter(self, key: str) -> tuple[int, float]:
        """A counter's count and the seconds until it expires; (0, 0.0) if there is none."""

    def ping(self) -> None: ...


class RedisStore:
    def __init__(self, connection: redis.Redis, prefix: str = DEFAULT_PREFIX) -> None:
        self.connection = connection
        self.prefix = prefix

    @classmethod
    def from_url(cls, url: str, prefix: str = DEFAULT_PREFIX) -> RedisStore:
        connection = redis.Redis.from_url(url, socket_timeout=2, socket_connect_timeout=2)
        return cls(connection, prefix)

    def add(self, key: str, ttl_seconds: float) -> bool:
        return bool(
            self.connection.set(self.prefix + key, b"1", nx=True, px=int(ttl_seconds * 1000))
        )

    def delete(self, key: str) -> None:
        self.connection.delete(self.prefix + key)

    def incr(self, key: str, ttl_seconds: float) -> int:
        # One transaction: a counter always gets its expiry, even if this process dies here.
        pipe = self.connection.pipeline(transaction=True)
        pipe.set(self.prefix + key, 0, nx=True, px=max(1, int(ttl_seconds * 1000)))
        pipe.incr(self.prefix + key)
        return int(pipe.execute()[1])

    def counter(self, key: str) -> tuple[int, float]:
        pipe = self.connection.pipeline(transaction=True)
        pipe.get(self.prefix + key)
        pipe.pttl(self.prefix + key)
        value, left = pipe.execute()
        if value is None:
            return 0, 0.0
        return int(value), max(0, int(left)) / 1000

    def ping(self) -> None:
        self.connection.ping()


class MemoryStore:
    """Correct for one process only: each gunicorn worker would have its own."""

    def __init__(
        self, prefix: str = DEFAULT_PREFIX, clock: Callable[[], float] = time.monotonic
    ) -> None:
        self.prefix = prefix
        self.clock = clock  # seconds, for expiry; tests pass one they can move
        self._expiry: dict[str, float] = {}
        self._counts: dict[str, int] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> bool:
        expires = self._expiry.get(key)
        if expires is None:
            return False
        if expires <= now:
            del self._expiry[key]
            self._counts.pop(key, None)
            return False
        return True

    def add(self, key: str, ttl_seconds: float) -> bool:
        now = self.clock()
        with self._lock:
            if self._live(key, now):
                return False
            self._expiry[key] = now + ttl_seconds
            if len(self._expiry) > 100_000:
                self._sweep(now)
            return True

    def delete(self, key: str) -> None:
        with self._lock:
            self._expiry.pop(key, None)
            self._counts.pop(key, None)

    def incr(self, key: str, ttl_seconds: float) -> int:
        now = self.clock()
        with self._lock:
            if not self._live(key, now):
                self._expiry[key] = now + ttl_seconds
            self._counts[key] = self._counts.get(key, 0) + 1
            return self._counts[key]

    def counter(self, key: str) -> tuple[int, float]:
        now = self.clock()
        with self._lock:
            if not self._live(key, now):
                return 0, 0.0
            return self._counts.get(key, 0), self._expiry[key] - now

    def ping(self) -> None:
        return None

    def _sweep(self, now: float) -> None:
        for key in [k for k, expires in self._expiry.items() if expires <= now]:
            del self._expiry[key]
            self._counts.pop(key, None)
