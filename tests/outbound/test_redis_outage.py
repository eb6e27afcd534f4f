"""Redis is a speed-up, never a single point of failure.

Redis is taken away for real (a TCP proxy in front of it, cut mid-traffic): every webhook is
still answered and stored, replies keep going out at no more than the configured rate, /readyz
stays ready and says Redis is degraded, and nothing is sent twice once Redis is back. Without
Redis each dispatcher sends at its share of the rate, the share counted from the dispatchers'
heartbeats in the database.
"""

from __future__ import annotations

import itertools
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from sqlmodel import Session, func, select

from bot import create_app
from bot.dev import simulate
from bot.outbound.heartbeat import HEARTBEAT_SECONDS, Heartbeat
from bot.wiring.services import services
from storage.db import make_engine, session_scope
from storage.models import ControlFlag, Message
from storage.ratelimit import (
    REDIS_RETRY_SECONDS,
    MemoryRateLimiter,
    RedisRateLimiter,
    SharedRateLimiter,
    burst_for,
)
from storage.types import utcnow
from tests.clock import ManualClock, SlotTimes
from tests.conftest import APP_SECRET
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import Running, graph_client, queue_texts
from tests.services import redis_url_or_skip
from tests.tcp_proxy import TcpProxy

# Nothing listens on port 1: every Redis call fails at once, as when Redis is down.
DOWN = "redis://127.0.0.1:1/0"


def down_limiter(rate: float, clock=lambda: 1000.0) -> SharedRateLimiter:  # type: ignore[no-untyped-def]
    connection = redis.Redis.from_url(DOWN, socket_connect_timeout=0.2)
    return SharedRateLimiter(
        RedisRateLimiter(connection, "send-rate", rate),
        MemoryRateLimiter(rate, clock=clock),
        clock=clock,
    )


# --- the limiter on its own -------------------------------------------------------------------


def test_without_redis_each_dispatcher_gets_its_share_of_the_rate() -> None:
    limiter = down_limiter(100)
    limiter.share_among(4)

    waits = [limiter.acquire("4917000000002") for _ in range(6)]

    burst = int(burst_for(25))  # the share's own burst: a tenth of a second at 25/s
    assert waits[:burst] == [0] * burst
    gaps = [b - a for a, b in itertools.pairwise(waits[burst:])]
    assert gaps == pytest.approx([1 / 25] * len(gaps))  # then 25/s, a quarter of 100
    limiter.share_among(1)  # the others stopped: the whole rate again, for new slots
    assert limiter.local.rate == 100


def test_a_share_is_never_more_than_the_whole_rate() -> None:
    limiter = down_limiter(100)
    limiter.share_among(0)
    assert limiter.local.rate == 100


def test_redis_is_asked_again_only_once_a_retry_period_has_passed() -> None:
    now = [1000.0]
    limiter = down_limiter(1000, clock=lambda: now[0])
    calls = Counter[str]()
    real = limiter.shared.acquire

    def counted(recipient: str | None = None) -> float | None:
        calls["redis"] += 1
        return real(recipient)

    limiter.shared.acquire = counted  # type: ignore[method-assign]
    for _ in range(50):
        limiter.acquire()
    assert calls["redis"] == 1  # a Redis that hangs costs one timeout, not one per send
    now[0] += REDIS_RETRY_SECONDS
    limiter.acquire()
    assert calls["redis"] == 2


# --- heartbeats -------------------------------------------------------------------------------


def test_dispatchers_count_each_other_and_a_stopped_one_gives_its_share_back(engine) -> None:
    limiters = [down_limiter(60) for _ in range(3)]
    beats = [
        Heartbeat(engine=engine, worker=f"host:{pid}", limiter=limiter, interval=5)
        for pid, limiter in enumerate(limiters)
    ]
    for heartbeat in beats:
        heartbeat.beat()
    beats[0].beat()  # the first to start learns of the others at its next beat

    assert [h.dispatchers for h in beats] == [3, 2, 3]
    assert limiters[0].local.rate == 20

    beats[2].stop()
    beats[0].beat()
    assert beats[0].dispatchers == 2 and limiters[0].local.rate == 30


def test_a_dead_dispatcher_stops_counting_and_old_heartbeats_are_pruned(engine) -> None:
    alive = Heartbeat(engine=engine, worker="host:1", limiter=down_limiter(60), interval=5)
    with session_scope(engine) as session:
        for name, age in (
            ("dispatcher:dead", timedelta(seconds=20)),
            ("dispatcher:gone", timedelta(days=2)),
        ):
            session.add(ControlFlag(name=name, value="x", updated_at=utcnow() - age))
        session.add(
            ControlFlag(
                name="dispatch_paused", value="kept", updated_at=utcnow() - timedelta(days=9)
            )
        )

    alive.beat()

    assert alive.dispatchers == 1  # 20 s without a beat (three periods of 5 s): not running
    with Session(engine) as session:
        names = set(session.exec(select(ControlFlag.name)))
    assert "dispatcher:gone" not in names  # pruned; other flags are left alone
    assert {"dispatcher:dead", "dispatch_paused"} <= names


# --- Redis cut for real, under traffic, on PostgreSQL -----------------------------------------


@pytest.fixture
def redis_proxy() -> TcpProxy:
    target = urlsplit(redis_url_or_skip())
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 6379)
    proxy.start()
    yield proxy
    proxy.stop()


def post(client, wa_id: str) -> int:  # type: ignore[no-untyped-def]
    body = simulate.text_body(wa_id=wa_id, text="hello")
    return client.post(
        "/webhook", data=body, headers={"X-Hub-Signature-256": simulate.sign(body, APP_SECRET)}
    ).status_code


def delivered_to(fake: FakeGraph) -> Counter[str]:
    return Counter(r.to for r in fake.deliveries() if r.to)


def slots_of(slots: SlotTimes, recipients: list[str]) -> list[float]:
    return sorted(at for to, at in slots.sent if to in recipients)


def paced(rate: float, start: float, count: int) -> list[float]:
    """count slots of a full bucket of burst 1 at this rate, from start: one every 1/rate s."""
    assert burst_for(rate) == 1
    return [start + k / rate for k in range(count)]


@pytest.mark.postgres
@pytest.mark.redis
def test_redis_cut_mid_traffic_costs_nothing_and_sends_nothing_twice(
    app_config, postgres_url, redis_proxy, fake
):
    rate = 5.0
    redis_db = urlsplit(redis_url_or_skip()).path or "/0"
    app = create_app(
        {
            **app_config,
            "DATABASE_URL": postgres_url,
            "REDIS_URL": f"redis://127.0.0.1:{redis_proxy.port}{redis_db}",
            "SEND_RATE_PER_SECOND": str(rate),
            "MARK_INBOUND_READ": "0",
        }
    )
    app_services = services(app)
    # The app's limiter as create_app wires it (the Redis bucket through the proxy, its own
    # bucket behind it), rebuilt on a clock that stands still: the slot of every reply is exact.
    wired = app_services.limiter
    assert isinstance(wired, SharedRateLimiter) and wired.rate == rate
    clock = ManualClock()
    slots = SlotTimes(clock)
    limiter = SharedRateLimiter(
        RedisRateLimiter(wired.shared.connection, wired.shared.key, rate, clock=clock),
        MemoryRateLimiter(rate, clock=clock),
        clock=clock,
    )
    dispatcher = app_services.start_dispatcher_thread(
        limiter=limiter, transport=slots.transport(app_services.transport), sleep=slots.sleep
    )
    client = app.test_client()
    numbers = [f"4477009{n:05d}" for n in range(30)]
    before, during, after = numbers[:5], numbers[5:20], numbers[20:]
    start = clock()
    try:
        assert [post(client, n) for n in before] == [200] * 5
        assert fake.wait_for(lambda f: len(f.deliveries()) == 5, timeout=20)

        redis_proxy.stop()
        assert [post(client, n) for n in during] == [200] * 15
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json["checks"]["redis"].startswith("degraded")
        # Replies keep going out while Redis is away.
        assert fake.wait_for(lambda f: set(delivered_to(f)) >= set(during), timeout=30)

        redis_proxy.start()
        clock.advance(REDIS_RETRY_SECONDS)  # the limiter asks Redis again from now on
        assert [post(client, n) for n in after] == [200] * 10
        assert fake.wait_for(lambda f: len(f.deliveries()) == 30, timeout=30)
        # Every row settled: anything that were to go twice would have gone by now.
        assert dispatcher.wait_drained(timeout=30)
        assert client.get("/readyz").json["checks"]["redis"] == "ok"
    finally:
        app_services.stop_dispatcher_thread()
        app_services.engine.dispose()

    assert delivered_to(fake) == Counter(numbers)  # each answered once, none twice
    with Session(make_engine(postgres_url)) as session:
        stored = session.exec(
            select(func.count()).select_from(Message).where(Message.direction == "in")
        ).one()
    assert stored == 30
    # Redis's bucket, then this process's own while Redis is away (full, as nothing took from
    # it yet), both at the configured rate; and Redis's again once it answers, whose bucket has
    # refilled meanwhile: its slots start at once, where the own bucket's would start later.
    assert slots_of(slots, before) == pytest.approx(paced(rate, start, 5))
    assert slots_of(slots, during) == pytest.approx(paced(rate, start, 15))
    assert slots_of(slots, after) == pytest.approx(paced(rate, start + REDIS_RETRY_SECONDS, 10))


@pytest.mark.postgres
def test_two_dispatchers_without_redis_hold_the_configured_rate_between_them(
    app_config, postgres_url, fake
):
    rate, count = 10.0, 30
    app: Flask = create_app({**app_config, "DATABASE_URL": postgres_url, "REDIS_URL": DOWN})
    engine = services(app).engine
    clock = ManualClock()  # the limiters' and the heartbeats' time, moved by the test
    slots = [SlotTimes(clock) for _ in range(2)]
    runs = [
        Running(
            services(app).dispatcher(
                transport=slots[n].transport(graph_client(fake)),
                limiter=down_limiter(rate, clock=clock),
                worker_id=f"test-host:{n}",
                sleep=slots[n].sleep,
                monotonic=clock,
                batch_size=count // 2,  # half each: the other's claim takes the rest
            )
        )
        for n in range(2)
    ]
    try:
        for run in runs:
            run.thread.start()
        # Each beats as its loop starts; the first to start learns of the other at its next
        # beat, a period later. Each has looked since then once both waits return.
        assert all(run.wait_drained() for run in runs)
        clock.advance(HEARTBEAT_SECONDS)
        assert all(run.wait_drained() for run in runs)
        assert [run.dispatcher.heartbeat.dispatchers for run in runs] == [2, 2]

        meta = fake.hold()  # until both have claimed their half (see test_rate)
        queue_texts(engine, count)
        for run in runs:
            run.poke()
        assert meta.wait_held(count)
        meta.release()
        assert all(run.wait_drained() for run in runs)
    finally:
        for run in runs:
            run.stop()
        engine.dispose()

    assert len(fake.deliveries()) == len({r.text for r in fake.deliveries()}) == count
    assert [run.dispatcher.stats.sent for run in runs] == [count // 2] * 2
    # Each at half the rate: its own bucket of burst 1 at 5/s, so the pair together at 10/s.
    for each in slots:
        assert each.times() == pytest.approx(paced(rate / 2, clock(), count // 2))
