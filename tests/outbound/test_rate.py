"""The shared send rate: the limiters' arithmetic exactly, and end to end that it is never exceeded.

A busy machine makes every sender late, never early, so what is asserted here is what lateness
cannot break:

- The in-process limiter runs on a clock the test moves (tests.clock.ManualClock): callers take
  10 s worth of slots and every send time is exact, the busiest second included.
- Redis keeps its own clock. Four clients reserve 2 s worth of slots without sleeping: no slot
  comes sooner than the rate allows from the moment they started.
- End to end, one dispatcher (in-process limiter) and two dispatchers sharing Redis send 2 s
  worth of messages to the fake server: none arrives sooner than the rate allows from the moment
  they started. That is an upper bound only: a slow run passes, and its rate is printed, not
  judged. How fast the dispatcher can go is `make bench`'s to measure (tests/bench).
"""

from __future__ import annotations

import heapq
import shutil
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import redis

from bot import create_app
from bot.wiring.services import services
from storage import migrate
from storage.db import make_engine
from storage.ratelimit import (
    MemoryRateLimiter,
    RateLimiter,
    RedisRateLimiter,
    SharedRateLimiter,
    burst_for,
)
from tests.clock import ManualClock
from tests.conftest import API_TOKEN, APP_SECRET, ROOT, VERIFY_TOKEN, _truncate
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import TOKEN, Running, graph_client, queue_texts, wa_id
from tests.services import postgres_url_or_skip, redis_url_or_skip

SECONDS = 10  # the span of the in-process limiter's checks, which cost no waiting
RESERVED_SECONDS = 2  # the Redis limiter's reservations: taken at once, not waited for
END_TO_END_SECONDS = 2  # real sending: long enough for the rate to show past the burst
# Redis keeps the bucket's timestamp to a tenth of a millisecond (Lua's "%.14g"), so over a few
# thousand slots it may run a token or so ahead of the exact rate: allowed for, no more.
REDIS_SLACK = 2
# CPython 3.11's AST builder keeps its recursion depth per interpreter, not per thread, and can
# raise SystemError when two threads parse at once (gh-106905); werkzeug parses while routes are
# added, so the measurements that run side by side make their apps one at a time.
_MAKING_APPS = threading.Lock()


def busiest_second(times: list[float]) -> int:
    """The most sends in any one-second window [t, t + 1)."""
    best, start = 0, 0
    for end, at in enumerate(times):
        while at - times[start] >= 1.0:
            start += 1
        best = max(best, end - start + 1)
    return best


def never_sooner_than_the_rate(
    rate: float, start: float, times: list[float], *, slack: float = 0.0
) -> None:
    """The k-th send (in time order) comes no sooner than a full bucket and the rate allow
    from start: k <= burst + rate x (its time - start). Lateness only adds to the right."""
    burst = burst_for(rate)
    for k, at in enumerate(sorted(times), start=1):
        assert k <= burst + rate * (at - start) + slack + 1e-6, (
            f"send {k} came {at - start:.4f} s after the start: sooner than {rate:.0f}/s "
            f"with a burst of {burst:.0f} allows"
        )


# --- the in-process limiter, on a clock the test moves -----------------------------------------


def take_slots(rate: float, callers: int, count: int) -> list[float]:
    """When each of count sends goes, callers taking slots from one in-process limiter as fast
    as it lets them, each acquiring again the moment its send goes. Simulated on a ManualClock,
    one event at a time: exact, and instant."""
    clock = ManualClock()
    limiter = MemoryRateLimiter(rate, clock=clock)
    ready = [(clock(), caller) for caller in range(callers)]  # (when it asks, who)
    sends: list[float] = []
    while len(sends) < count:
        asks, caller = heapq.heappop(ready)
        clock.advance(max(0.0, asks - clock()))
        now = clock()  # the time as the limiter reads it (whole microseconds)
        wait = limiter.acquire()
        assert wait is not None
        sends.append(now + wait)
        heapq.heappush(ready, (now + wait, caller))
    return sorted(sends)


@pytest.mark.parametrize(("rate", "callers"), [(80, 16), (500, 4)])
def test_in_process_limiter_holds_its_rate_exactly(rate: int, callers: int) -> None:
    sends = take_slots(rate, callers, rate * SECONDS)
    burst = int(burst_for(rate))

    assert sends[:burst] == [sends[0]] * burst  # the bucket's burst goes at once
    gaps = [b - a for a, b in zip(sends[burst - 1 :], sends[burst:], strict=False)]
    assert gaps == pytest.approx([1 / rate] * len(gaps))  # then one slot every 1/rate s
    assert sends[-1] - sends[0] == pytest.approx((len(sends) - burst) / rate)
    # The busiest second: the burst and a second's worth after it, never more.
    assert rate + burst - 1 <= busiest_second(sends) <= rate + burst
    never_sooner_than_the_rate(rate, sends[0], sends)


# --- the Redis limiter, on Redis's clock ------------------------------------------------------


def test_redis_limiter_shared_by_four_clients_holds_500_per_second() -> None:
    url = redis_url_or_skip()
    rate, count = 500, 500 * RESERVED_SECONDS
    key = f"optin-test-{uuid.uuid4().hex[:8]}:send-rate"
    clients = [  # a connection each, as separate processes would have
        RedisRateLimiter(redis.Redis.from_url(url), key, rate) for _ in range(4)
    ]
    lock = threading.Lock()
    slots: list[float] = []
    remaining = count

    def reserve(limiter: RateLimiter) -> None:
        nonlocal remaining
        while True:
            with lock:
                if remaining == 0:
                    return
                remaining -= 1
            wait = limiter.acquire()  # a reservation: nobody sleeps it out here
            assert wait is not None
            at = time.monotonic() + wait  # when its caller would send
            with lock:
                slots.append(at)

    threads = [threading.Thread(target=reserve, args=(client,)) for client in clients]
    start = time.monotonic()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    took = time.monotonic() - start
    clients[0].connection.delete(key)
    for client in clients:
        client.connection.close()

    assert len(slots) == count
    never_sooner_than_the_rate(rate, start, slots, slack=REDIS_SLACK)
    print(f"four clients reserved {count} slots at {rate}/s in {took:.2f} s")


# --- end to end: never faster than the rate ---------------------------------------------------


@dataclass(frozen=True, slots=True)
class Measured:
    rate: float  # configured, per second
    start: float  # monotonic, just before the dispatchers started
    times: list[float]  # when each message reached the fake server (monotonic), sorted
    expected: int  # how many were queued
    slack: float  # tokens allowed for the limiter's own rounding

    def check(self) -> None:
        span = self.times[-1] - self.start
        summary = (
            f"configured {self.rate:.0f}/s; {len(self.times)} messages in {span:.2f} s "
            f"({len(self.times) / span:.1f}/s; not judged: see make bench)"
        )
        print(summary)
        assert len(self.times) == self.expected, summary
        never_sooner_than_the_rate(self.rate, self.start, self.times, slack=self.slack)


def end_to_end(database_url: str, limiters: list[RateLimiter], redis_url: str | None) -> Measured:
    """rate x 2 s of messages sent by one dispatcher per limiter, timed at the fake server."""
    rate = limiters[0].rate
    config = {
        "APP_ENV": "production",
        "WHATSAPP_VERIFY_TOKEN": VERIFY_TOKEN,
        "WHATSAPP_APP_SECRET": APP_SECRET,
        "SECRET_KEY": "test-secret-key-of-32-characters-or-more",
        "DATABASE_URL": database_url,
        "OPTIN_CONFIG": str(ROOT / "optin.toml"),
        "API_TOKENS": API_TOKEN,
        "RUN_DISPATCHER": "0",
        "REDIS_PREFIX": f"optin-test-{uuid.uuid4().hex[:8]}:",
        "WHATSAPP_ACCESS_TOKEN": TOKEN,
    }
    if redis_url:
        config["REDIS_URL"] = redis_url
    with _MAKING_APPS:
        app = create_app(config)
    engine = services(app).engine
    count = int(rate * END_TO_END_SECONDS)
    with FakeGraph(tokens={TOKEN}) as fake:
        queue_texts(engine, count, recipients=[wa_id(i) for i in range(80)])
        runs = [
            Running(services(app).dispatcher(transport=graph_client(fake), limiter=limiter))
            for limiter in limiters
        ]
        start = time.monotonic()
        for run in runs:
            run.thread.start()
        try:
            fake.wait_for(lambda f: len(f.deliveries()) >= count, timeout=60)
        finally:
            for run in runs:
                run.stop()  # one that does not stop fails the test with its stack
            engine.dispose()
        times = sorted(r.at for r in fake.deliveries())
        return Measured(rate, start, times, count, REDIS_SLACK if redis_url else 0.0)


def _redis_or_none() -> str | None:
    try:
        return redis_url_or_skip()
    except (pytest.skip.Exception, pytest.fail.Exception):
        return None  # the Redis tests below skip or fail by themselves


def _sqlite_copy(database_template: str, directory: Path) -> str:
    path = directory / "rate.db"
    if "://" in database_template:  # the PostgreSQL run: a SQLite database of its own
        migrate.upgrade(f"sqlite:///{path}")
    else:
        shutil.copyfile(database_template, path)
    return f"sqlite:///{path}"


def _postgres_or_none(request: pytest.FixtureRequest) -> str | None:
    try:
        url: str = request.getfixturevalue("postgres_schema")
    except (pytest.skip.Exception, pytest.fail.Exception):
        return None  # the tests that need it skip or fail by themselves
    engine = make_engine(url)
    _truncate(engine)
    engine.dispose()
    return url


@pytest.fixture(scope="module")
def measured(
    request: pytest.FixtureRequest,
    database_template: str,
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[dict[str, Measured | BaseException]]:
    """Both end-to-end runs side by side, to keep the suite short."""
    redis_url = _redis_or_none()
    private = _sqlite_copy(database_template, tmp_path_factory.mktemp("rate"))
    # Two dispatchers side by side need PostgreSQL: on SQLite one sends at a time.
    shared = _postgres_or_none(request)
    key = f"optin-test-{uuid.uuid4().hex[:8]}:e2e"
    connections: list[redis.Redis] = []

    def shared_limiters(rate: float, count: int) -> list[RateLimiter]:
        assert redis_url is not None
        limiters: list[RateLimiter] = []
        for _ in range(count):  # a connection each, as separate processes would have
            connection = redis.Redis.from_url(redis_url)
            connections.append(connection)
            limiters.append(RedisRateLimiter(connection, key, rate))
        return limiters

    runs: dict[str, Callable[[], Measured]] = {
        "memory 80 end to end": lambda: end_to_end(private, [MemoryRateLimiter(80)], None),
    }
    if redis_url and shared:
        runs["redis 80 end to end, two dispatchers"] = lambda: end_to_end(
            shared, shared_limiters(80, 2), redis_url
        )

    results: dict[str, Measured | BaseException] = {}

    def run(name: str, measure: Callable[[], Measured]) -> None:
        try:
            results[name] = measure()
        except BaseException as exc:  # reported by the test that reads it
            results[name] = exc

    threads = [threading.Thread(target=run, args=item) for item in runs.items()]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    yield results
    for connection in connections:
        connection.delete(key)
        connection.close()


def result(measured: dict[str, Measured | BaseException], name: str) -> Measured:
    outcome = measured[name]
    if isinstance(outcome, BaseException):
        raise outcome
    return outcome


@pytest.mark.slow
def test_in_process_limiter_holds_80_per_second_end_to_end(measured: dict[str, Any]) -> None:
    result(measured, "memory 80 end to end").check()


@pytest.mark.slow
def test_redis_limiter_shared_by_two_dispatchers_holds_80_per_second_in_sum(
    measured: dict[str, Any],
) -> None:
    redis_url_or_skip()
    postgres_url_or_skip()
    result(measured, "redis 80 end to end, two dispatchers").check()


# --- what Meta's "slow down" does to the bucket ------------------------------------------------


@dataclass
class Limiter:
    """A limiter at 100/s and a way to let its time pass: a ManualClock for the in-process
    one; for Redis, whose clock runs on its own, the test measures what passed instead."""

    limiter: RateLimiter
    clock: ManualClock | None
    connection: redis.Redis | None = None
    key: str = ""

    def advance(self, seconds: float) -> None:
        """Let this much time pass for Meta's pacing of a recipient."""
        if self.clock is not None:
            self.clock.advance(seconds)
            return
        assert self.connection is not None  # Redis: end what the pace keys have left
        for paced in self.connection.scan_iter(self.key + ":pace:*"):
            left = self.connection.pttl(paced)
            if 0 <= left <= seconds * 1000:
                self.connection.delete(paced)
            elif left > 0:
                self.connection.pexpire(paced, left - int(seconds * 1000))


@pytest.fixture(params=["memory", "redis"])
def limiter_at_100(request: pytest.FixtureRequest) -> Iterator[Limiter]:
    if request.param == "memory":
        clock = ManualClock()
        yield Limiter(MemoryRateLimiter(100, clock=clock), clock)
        return
    connection = redis.Redis.from_url(redis_url_or_skip())
    key = f"optin-test-{uuid.uuid4().hex[:8]}:send-rate"
    yield Limiter(RedisRateLimiter(connection, key, 100), None, connection, key)
    for stale in connection.scan_iter(key + "*"):
        connection.delete(stale)
    connection.close()


def test_a_penalty_holds_the_next_send_back_and_concurrent_penalties_do_not_add_up(
    limiter_at_100: Limiter,
) -> None:
    limiter = limiter_at_100.limiter
    for _ in range(int(burst_for(100))):
        assert limiter.acquire() == 0  # the burst is free
    started = time.monotonic()
    for _ in range(16):  # every request in flight was answered 130429 at once
        limiter.penalise(1.0)
    wait = limiter.acquire()
    # One second's pause (and the slot after it), not sixteen. On Redis's clock what passed
    # since the last penalty is already served; here it is at most what this test measured.
    passed = 0.0 if limiter_at_100.clock else time.monotonic() - started
    assert wait is not None
    assert 1.01 - passed - 1e-6 <= wait <= 1.01 + 1e-6


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
