"""The coordination store's counters, in Redis and in process.

Expiry is checked on time the test moves (tests.clock.StoreTime): exactly for the in-process
store, and for Redis by shortening what its keys have left, so no test waits for a key to expire.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator

import pytest
import redis

from storage.kv import KeyValueStore, MemoryStore, RedisStore
from tests.clock import StoreTime
from tests.services import redis_url_or_skip


@pytest.fixture(params=["memory", "redis"])
def store_and_time(request: pytest.FixtureRequest) -> Iterator[tuple[KeyValueStore, StoreTime]]:
    if request.param == "memory":
        yield StoreTime.of(MemoryStore())
        return
    connection = redis.Redis.from_url(redis_url_or_skip())
    prefix = f"optin-test-{uuid.uuid4().hex[:8]}:"
    yield StoreTime.of(RedisStore(connection, prefix))
    for key in connection.scan_iter(prefix + "*"):
        connection.delete(key)
    connection.close()


@pytest.fixture
def store(store_and_time: tuple[KeyValueStore, StoreTime]) -> KeyValueStore:
    return store_and_time[0]


def test_a_counter_counts_and_says_how_long_it_has_left(store: KeyValueStore) -> None:
    assert store.counter("tries") == (0, 0.0)
    assert [store.incr("tries", 60) for _ in range(3)] == [1, 2, 3]
    if isinstance(store, RedisStore):
        # Redis's clock runs on between the calls: what counter() says lies between what Redis
        # says of the key just before and just after.
        key = store.prefix + "tries"
        before = int(store.connection.pttl(key)) / 1000
        count, left = store.counter("tries")
        after = int(store.connection.pttl(key)) / 1000
        assert 0 < after <= left <= before <= 60
    else:
        count, left = store.counter("tries")
        assert left == 60  # on a clock that stands still: exactly
    assert count == 3


def test_a_counter_expires_from_its_first_increment_not_its_last(
    store_and_time: tuple[KeyValueStore, StoreTime],
) -> None:
    store, moved = store_and_time
    store.incr("tries", 60)
    moved.advance(40)
    assert store.incr("tries", 60) == 2  # counted in the same window, which it does not extend
    count, left = store.counter("tries")
    assert count == 2 and 0 < left <= 20
    moved.advance(20)
    assert store.counter("tries") == (0, 0.0)
    assert store.incr("tries", 60) == 1


def test_deleting_a_counter_starts_it_again(store: KeyValueStore) -> None:
    store.incr("tries", 60)
    store.delete("tries")
    assert store.counter("tries") == (0, 0.0)
    assert store.incr("tries", 60) == 1
