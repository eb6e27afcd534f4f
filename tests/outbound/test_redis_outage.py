"""Redis is a speed-up, never a single point of failure.

Redis is taken away for real (a TCP proxy in front of it, cut mid-traffic): every webhook is
still answered and stored, replies keep going out at no more than the configured rate, /readyz
stays ready and says Redis is degraded, and nothing is sent twice once Redis is back. Without
Redis each dispatcher sends at its share of the rate, the share counted from the dispatchers'
heartbeats in the database.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from datetime import timedelta
from urllib.parse import urlsplit

import pytest
import redis
from flask import Flask
from sqlmodel import Session, func, select

from bot import create_app
from bot.dev import simulate
from bot.outbound.heartbeat import Heartbeat
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
from tests.conftest import APP_SECRET
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import graph_client, queue_texts
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


@pytest.mark.postgres
@pytest.mark.redis
@pytest.mark.slow
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
    app_services.start_dispatcher_thread()
    client = app.test_client()
    numbers = [f"4477009{n:05d}" for n in range(30)]
    before, during, after = numbers[:5], numbers[5:20], numbers[20:]
    try:
        assert [post(client, n) for n in before] == [200] * 5
        assert fake.wait_for(lambda f: len(f.deliveries()) == 5, timeout=20)

        redis_proxy.stop()
        cut_at = time.monotonic()
        assert [post(client, n) for n in during] == [200] * 15
        ready = client.get("/readyz")
        assert ready.status_code == 200
        assert ready.json["checks"]["redis"].startswith("degraded")
        # Replies keep going out while Redis is away.
        assert fake.wait_for(lambda f: set(delivered_to(f)) >= set(during), timeout=30)
        sent_while_down = sorted(r.at for r in fake.deliveries() if r.at >= cut_at)

        redis_proxy.start()
        assert [post(client, n) for n in after] == [200] * 10
        assert fake.wait_for(lambda f: len(f.deliveries()) == 30, timeout=30)
        time.sleep(1.0)  # anything sent twice would arrive now
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
    # At most the configured rate: after this process's burst, one send per 1/rate seconds.
    slowest = (len(sent_while_down) - 1 - burst_for(rate)) / rate
    assert sent_while_down[-1] - sent_while_down[0] >= slowest - 0.05


@pytest.mark.postgres
@pytest.mark.slow
def test_two_dispatchers_without_redis_hold_the_configured_rate_between_them(
    app_config, postgres_url, fake
):
    rate, count = 10.0, 30
    app: Flask = create_app({**app_config, "DATABASE_URL": postgres_url, "REDIS_URL": DOWN})
    engine = services(app).engine
    queue_texts(engine, count)
    stop = threading.Event()
    dispatchers = [
        services(app).dispatcher(
            transport=graph_client(fake),
            limiter=down_limiter(rate, clock=time.monotonic),
            worker_id=f"test-host:{n}",
            heartbeat_seconds=0.2,
        )
        for n in range(2)
    ]
    threads = [threading.Thread(target=d.run, args=(stop,)) for d in dispatchers]
    try:
        for thread in threads:
            thread.start()
        assert fake.wait_for(lambda f: len(f.deliveries()) == count, timeout=30)
        assert [d.heartbeat.dispatchers for d in dispatchers] == [2, 2]
    finally:
        stop.set()
        for thread in threads:
            thread.join(10)
        engine.dispose()

    times = sorted(r.at for r in fake.deliveries())
    assert len(times) == len(set(r.text for r in fake.deliveries())) == count
    # Each at half the rate once they have seen each other's heartbeat (within 0.2 s): the pair
    # together no faster than the configured rate, bursts and that first moment aside.
    head_start = 2 * (burst_for(rate / 2) + 0.2 * rate)
    assert times[-1] - times[0] >= (count - 1 - head_start) / rate - 0.05
