"""Fast, forgettable coordination: Redis when configured, else an in-process store.

Nothing here is a source of truth. If it forgets everything, the database's unique keys still
stop double effects; it only saves work and coordinates processes.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

DEFAULT_PREFIX = "optin:"


class KeyValueStore(Protocol):
    prefix: str

    def add(self, key: str, ttl_seconds: float) -> bool:
        """Set key if absent (SET NX with expiry); True if this call set it."""

    def exists(self, key: str) -> bool: ...

    def delete(self, key: str) -> None: ...

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

    def exists(self, key: str) -> bool:
        return bool(self.connection.exists(self.prefix + key))

    def delete(self, key: str) -> None:
        self.connection.delete(self.prefix + key)

    def ping(self) -> None:
        self.connection.ping()


class MemoryStore:
    """Correct for one process only: each gunicorn worker would have its own."""

    def __init__(self, prefix: str = DEFAULT_PREFIX) -> None:
        self.prefix = prefix
        self._expiry: dict[str, float] = {}
        self._lock = threading.Lock()

    def _live(self, key: str, now: float) -> bool:
        expires = self._expiry.get(key)
        if expires is None:
            return False
        if expires <= now:
            del self._expiry[key]
            return False
        return True

    def add(self, key: str, ttl_seconds: float) -> bool:
        now = time.monotonic()
        with self._lock:
            if self._live(key, now):
                return False
            self._expiry[key] = now + ttl_seconds
            if len(self._expiry) > 100_000:
                self._sweep(now)
            return True

    def exists(self, key: str) -> bool:
        with self._lock:
            return self._live(key, time.monotonic())

    def delete(self, key: str) -> None:
        with self._lock:
            self._expiry.pop(key, None)

    def ping(self) -> None:
        return None

    def _sweep(self, now: float) -> None:
        for key in [k for k, expires in self._expiry.items() if expires <= now]:
            del self._expiry[key]
