"""The shared send rate: the limiters' arithmetic and the dispatchers' use of it, exactly.

Every check here runs on a clock the test moves or holds still (tests.clock.ManualClock), so a
busy machine can neither fail it nor hide a fault; the Redis limiter reads the same clock in its
script instead of Redis's own:

- Callers take 10 s worth of slots from one limiter, in process or in Redis through four
  clients: the burst goes at once, then one slot every 1/rate s; the busiest second holds the
  burst and a second's worth, never more.
- End to end, one dispatcher (in-process limiter) and two dispatchers sharing a Redis bucket
  send 2 s worth of messages to the fake server, on a clock that stands still: each message went
  in a slot of its own, at the time the limiter gave it (tests.clock.SlotTimes).

How fast the dispatcher can go, and that the rate it achieves on a real clock is the configured
one, is `make bench`'s to measure (tests/bench/bench_dispatcher.py), not the suite's.
"""

from __future__ import annotations

import heapq
import uuid
from collections.abc import Iterator
from dataclasses import dataclass

import pytest
import redis
from flask import Flask

from bot import create_app
from bot.wiring.services import services
from storage.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SharedRateLimiter,
    burst_for,
)
from tests.clock import ManualClock, SlotTimes
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    MakeDispatcher,
    Running,
    graph_client,
    queue_texts,
    wa_id,
)
from tests.services import redis_url_or_skip

SECONDS = 10  # the span of the limiters' checks, which cost no waiting
END_TO_END_SECONDS = 2  # messages sent end to end: long enough for the rate to show past the burst


def busiest_second(times: list[float]) -> int:
    """The most sends in any one-second window [t, t + 1)."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def assert_paced_exactly(rate: float, sends: list[float]) -> None:
    """The burst at once, then one slot every 1/rate s; the busiest second the burst and a
    second's worth after it, never more."""
    burst = int(burst_for(rate))
    assert sends[:burst] == pytest.approx([sends[0]] * burst)
    gaps = [b - a for a, b in zip(sends[burst - 1 :], sends[burst:], strict=False)]
    assert gaps == pytest.approx([1 / rate] * len(gaps))
    assert sends[-1] - sends[0] == pytest.approx((len(sends) - burst) / rate)
    assert rate + burst - 1 <= busiest_second(sends) <= rate + burst


# --- the limiters, on a clock the test moves --------------------------------------------------


def take_slots(
    limiters: list[RateLimiter], clock: ManualClock, callers: int, count: int
) -> list[float]:
    """When each of count sends goes, callers taking slots as fast as the limiters let them
    (caller n through limiters[n % len(limiters)], all sharing one bucket), each acquiring again
    the moment its send goes. Simulated on the clock, one event at a time: exact, and instant."""
    ready = [(clock(), caller) for caller in range(callers)]  # (when it asks, who)
    sends: list[float] = []
    while len(sends) < count:
        asks, caller = heapq.heappop(ready)
        clock.advance(max(0.0, asks - clock()))
        now = clock()  # the time as the limiter reads it (whole microseconds)
        wait = limiters[caller % len(limiters)].acquire()
        assert wait is not None
        sends.append(now + wait)
        heapq.heappush(ready, (now + wait, caller))
    return sorted(sends)


@pytest.mark.parametrize(("rate", "callers"), [(80, 16), (500, 4)])
def test_in_process_limiter_holds_its_rate_exactly(rate: int, callers: int) -> None:
    clock = ManualClock()
    sends = take_slots([MemoryRateLimiter(rate, clock=clock)], clock, callers, rate * SECONDS)

    assert_paced_exactly(rate, sends)
    # In process the times are whole microseconds: the burst leaves at the very same moment.
    assert sends[: int(burst_for(rate))] == [sends[0]] * int(burst_for(rate))


@pytest.fixture
def redis_key() -> Iterator[tuple[str, str]]:
    """A bucket of its own in the test Redis: (url, key)."""
    url = redis_url_or_skip()
    key = f"optin-test-{uuid.uuid4().hex[:8]}:send-rate"
    yield url, key
    connection = redis.Redis.from_url(url)
    for stale in connection.scan_iter(key + "*"):
        connection.delete(stale)
    connection.close()


@pytest.mark.parametrize(("rate", "callers"), [(80, 16), (500, 4)])
def test_redis_limiter_shared_by_four_clients_holds_its_rate_exactly(
    redis_key: tuple[str, str], rate: int, callers: int
) -> None:
    url, key = redis_key
    clock = ManualClock()
    connections = [redis.Redis.from_url(url) for _ in range(4)]  # as four processes would have
    try:
        limiters: list[RateLimiter] = [
            RedisRateLimiter(connection, key, rate, clock=clock) for connection in connections
        ]
        sends = take_slots(limiters, clock, callers, rate * SECONDS)
    finally:
        for connection in connections:
            connection.close()

    assert_paced_exactly(rate, sends)


# --- end to end: a slot of its own for every message ------------------------------------------


def assert_one_slot_each(rate: float, slots: SlotTimes, fake: FakeGraph, count: int) -> None:
    """Every message delivered once, each at a slot of its own as the limiter handed them out
    on a clock that stood still: the burst at the clock's time, then one every 1/rate s."""
    assert len(fake.deliveries()) == count
    assert len({r.text for r in fake.deliveries()}) == count  # none twice
    burst = int(burst_for(rate))
    start = slots.clock()
    expected = [start] * burst + [start + k / rate for k in range(1, count - burst + 1)]
    assert slots.times() == pytest.approx(expected)
    assert rate + burst - 1 <= busiest_second(slots.times()) <= rate + burst


def test_one_dispatcher_sends_each_message_in_its_own_slot_of_the_rate(
    make_dispatcher: MakeDispatcher, app: Flask, fake: FakeGraph
) -> None:
    rate, count = 80, 80 * END_TO_END_SECONDS
    clock = ManualClock()
    slots = SlotTimes(clock)
    queue_texts(services(app).engine, count, recipients=[wa_id(i) for i in range(80)])
    dispatcher = make_dispatcher(
        limiter=MemoryRateLimiter(rate, clock=clock),
        transport=slots.transport(graph_client(fake)),
        sleep=slots.sleep,
    )

    assert dispatcher.drain() == count

    assert_one_slot_each(rate, slots, fake, count)


@pytest.mark.postgres
@pytest.mark.redis
def test_two_dispatchers_sharing_redis_send_each_message_in_its_own_slot_of_the_rate(
    app_config: dict[str, str], postgres_url: str, redis_key: tuple[str, str], fake: FakeGraph
) -> None:
    rate, count, concurrency = 80, 80 * END_TO_END_SECONDS, 8
    url, key = redis_key
    app = create_app({**app_config, "DATABASE_URL": postgres_url})
    engine = services(app).engine
    clock = ManualClock()
    slots = SlotTimes(clock)
    connections = [redis.Redis.from_url(url) for _ in range(2)]  # as two processes would have
    queue_texts(engine, count, recipients=[wa_id(i) for i in range(80)])
    runs = [
        Running(
            services(app).dispatcher(
                transport=slots.transport(graph_client(fake)),
                limiter=RedisRateLimiter(connection, key, rate, clock=clock),
                sleep=slots.sleep,
                batch_size=count // 2,  # half each: the other's claim takes the rest
                concurrency=concurrency,
            )
        )
        for connection in connections
    ]
    # Meta holds the first sends until both dispatchers are sending: each has claimed its half
    # before either may claim again, so both take slots from the bucket for all that time.
    meta = fake.hold()
    try:
        for run in runs:
            run.thread.start()
        assert meta.wait_held(2 * concurrency)
        meta.release()
        assert all(run.wait_drained() for run in runs)
    finally:
        for run in runs:
            run.stop()
        for connection in connections:
            connection.close()
        engine.dispose()

    assert [run.dispatcher.stats.sent for run in runs] == [count // 2] * 2
    assert_one_slot_each(rate, slots, fake, count)


# --- what Meta's "slow down" does to the bucket ------------------------------------------------


@dataclass
class Limiter:
    """A limiter at 100/s on a clock the test moves, and a way to let its time pass."""

    limiter: RateLimiter
    clock: ManualClock
    connection: redis.Redis | None = None
    key: str = ""

    def advance(self, seconds: float) -> None:
        """Let this much time pass for the bucket and for Meta's pacing of a recipient."""
        self.clock.advance(seconds)
        if self.connection is None:
            return
        # Redis expires the pace keys on its own clock: end what they have left instead.
        for paced in self.connection.scan_iter(self.key + ":pace:*"):
            left = self.connection.pttl(paced)
            if 0 <= left <= seconds * 1000:
                self.connection.delete(paced)
            elif left > 0:
                self.connection.pexpire(paced, left - int(seconds * 1000))


@pytest.fixture(params=["memory", "redis"])
def limiter_at_100(request: pytest.FixtureRequest) -> Iterator[Limiter]:
    clock = ManualClock()
    if request.param == "memory":
        yield Limiter(MemoryRateLimiter(100, clock=clock), clock)
        return
    url, key = request.getfixturevalue("redis_key")
    connection = redis.Redis.from_url(url)
    yield Limiter(RedisRateLimiter(connection, key, 100, clock=clock), clock, connection, key)
    connection.close()


def test_a_penalty_holds_the_next_send_back_and_concurrent_penalties_do_not_add_up(
    limiter_at_100: Limiter,
) -> None:
    limiter = limiter_at_100.limiter
    for _ in range(int(burst_for(100))):
        assert limiter.acquire() == 0  # the burst is free
    for _ in range(16):  # every request in flight was answered 130429 at once
        limiter.penalise(1.0)
    assert limiter.acquire() == pytest.approx(1.01)  # one second's pause and a slot, not sixteen
    limiter_at_100.advance(0.5)
    for _ in range(16):  # a second pause asked for within the first holds from now, no longer
        limiter.penalise(1.0)
    assert limiter.acquire() == pytest.approx(1.01)
    limiter_at_100.advance(2.0)
    assert limiter.acquire() == pytest.approx(0.0)  # served: the bucket refills from there


def test_a_paced_recipient_gets_no_slot_until_its_pause_ends_and_others_go_on(
    limiter_at_100: Limiter,
) -> None:
    limiter = limiter_at_100.limiter
    limiter.pace("4917000000001", 60)

    assert limiter.acquire("4917000000001") is None
    assert limiter.acquire("4917000000002") == 0  # someone else: a slot as usual
    assert limiter.acquire() == 0  # no recipient (nothing to pace)
    limiter_at_100.advance(30)
    assert limiter.acquire("4917000000001") is None  # half way: still paced
    limiter_at_100.advance(30)
    assert limiter.acquire("4917000000001") is not None


def test_a_paced_recipient_takes_no_slot_from_the_others(limiter_at_100: Limiter) -> None:
    limiter = limiter_at_100.limiter
    limiter.pace("4917000000001", 5)
    for _ in range(50):
        assert limiter.acquire("4917000000001") is None
    # The burst is still whole: the refusals took nothing from it.
    waits = [limiter.acquire("4917000000002") for _ in range(int(burst_for(100)))]
    assert waits == [0] * int(burst_for(100))


# --- Redis away -----------------------------------------------------------------------------


def test_while_redis_is_down_each_process_keeps_sending_at_the_configured_rate() -> None:
    # Nothing listens on port 1: every call fails at once, as when Redis is down.
    down = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=0.2)
    frozen = MemoryRateLimiter(100, clock=lambda: 1000.0)  # no refill between the calls
    limiter = SharedRateLimiter(RedisRateLimiter(down, "send-rate", 100), frozen)

    waits = [limiter.acquire("4917000000002") for _ in range(int(burst_for(100)) + 1)]

    assert waits[:-1] == [0] * int(burst_for(100))  # the local burst, as from Redis
    assert waits[-1] == pytest.approx(0.01)  # then paced at 100/s
    limiter.pace("4917000000001", 5)
    assert limiter.acquire("4917000000001") is None  # Meta's pacing still holds locally


def test_the_redis_limiter_loads_its_script_again_after_redis_forgot_it(
    redis_key: tuple[str, str],
) -> None:
    url, key = redis_key
    clock = ManualClock()
    connection = redis.Redis.from_url(url)
    try:
        limiter = RedisRateLimiter(connection, key, 100, clock=clock)
        burst = int(burst_for(100))
        assert [limiter.acquire() for _ in range(burst)] == [0] * burst
        connection.script_flush()  # as after a restart of Redis
        # Answered all the same, from the bucket as it stood.
        assert limiter.acquire() == pytest.approx(0.01)
        assert limiter.acquire() == pytest.approx(0.02)
    finally:
        connection.close()
