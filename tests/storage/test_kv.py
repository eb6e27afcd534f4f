"""The coordination store's counters, in Redis and in process."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator

import pytest
import redis

from storage.kv import KeyValueStore, MemoryStore, RedisStore
from tests.services import redis_url_or_skip


@pytest.fixture(params=["memory", "redis"])
def store(request: pytest.FixtureRequest) -> Iterator[KeyValueStore]:
    if request.param == "memory":
        yield MemoryStore()
        return
    connection = redis.Redis.from_url(redis_url_or_skip())
    prefix = f"optin-test-{uuid.uuid4().hex[:8]}:"
    yield RedisStore(connection, prefix)
    for key in connection.scan_iter(prefix + "*"):
        connection.delete(key)
    connection.close()


def test_a_counter_counts_and_says_how_long_it_has_left(store: KeyValueStore) -> None:
    assert store.counter("tries") == (0, 0.0)
    assert [store.incr("tries", 60) for _ in range(3)] == [1, 2, 3]
    count, left = store.counter("tries")
    assert count == 3
    assert 59 < left <= 60


def test_a_counter_expires_from_its_first_increment_not_its_last(store: KeyValueStore) -> None:
    store.incr("tries", 1.0)
    time.sleep(0.6)
    assert store.incr("tries", 1.0) == 2  # counted in the same window, which it does not extend
    time.sleep(0.5)
    assert store.counter("tries") == (0, 0.0)
    assert store.incr("tries", 1.0) == 1


def test_deleting_a_counter_starts_it_again(store: KeyValueStore) -> None:
    store.incr("tries", 60)
    store.delete("tries")
    assert store.counter("tries") == (0, 0.0)
    assert store.incr("tries", 60) == 1
