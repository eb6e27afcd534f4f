"""Dispatchers as separate processes (`flask --app wsgi outbox work`): crashes and concurrency."""

from __future__ import annotations

import re
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot import create_app
from bot.wiring.services import services
from storage.db import make_engine
from storage.models import OutboxItem
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    Worker,
    graph_client,
    messages,
    outbox,
    queue_texts,
    wa_id,
    wait_until,
)
from tests.tcp_proxy import TcpProxy

StartWorker = Callable[..., Worker]


def sent_by(output: str) -> int:
    """The sent count in the stats line a worker prints when it stops."""
    match = re.search(r"DispatchStats\(sent=(\d+)", output)
    assert match, f"no stats line in {output!r}"
    return int(match.group(1))


def test_a_dispatcher_killed_mid_batch_loses_nothing_once_another_starts(
    engine: Engine,
    fake: FakeGraph,
    worker_env: dict[str, str],
    workers: StartWorker,
) -> None:
    fake.latency = 0.05  # slow enough for the kill to land while a batch is in flight
    queued = queue_texts(engine, 150)
    options = ("--batch-size", "20", "--concurrency", "4", "--lease-seconds", "2")

    first = workers(worker_env, *options)
    assert fake.wait_for(lambda f: len(f.deliveries()) >= 30, timeout=30), first.errors()
    first.kill()
    # SIGKILL: no shutdown ran. What it held stays claimed until the lease ends.
    in_flight = {row.message_id for row in outbox(engine) if row.claimed_by}
    assert in_flight, "the kill should have landed mid-batch"
    delivered_before = sum(fake.delivered().values())
    assert 0 < delivered_before < 150

    second = workers(worker_env, *options)
    assert wait_until(lambda: not outbox(engine), timeout=30), second.errors()
    second.stop()

    delivered = fake.delivered()
    lost = [q for q in queued if delivered[q.marker] == 0]
    assert lost == []
    duplicated = {q.message_id for q in queued if delivered[q.marker] > 1}
    # At least once: only a row in flight when the process died may have gone out twice.
    assert duplicated <= in_flight
    assert all(m.status == "sent" and m.wamid for m in messages(engine, queued).values())


def test_four_dispatcher_processes_on_postgresql_never_send_a_row_twice(
    postgres_url: str,
    fake: FakeGraph,
    worker_env: dict[str, str],
    workers: StartWorker,
    tmp_path: Path,
) -> None:
    # Slow enough that the 400 rows take over a second, so that a dispatcher waking from its
    # half-second idle wait still finds some: each process's 4 threads send about 80/s.
    fake.latency = 0.05
    env = {**worker_env, "DATABASE_URL": postgres_url}
    options = ("--batch-size", "25", "--concurrency", "4")
    started = [workers(env, *options) for _ in range(4)]
    for worker in started:
        worker.wait_running()

    engine = make_engine(postgres_url)
    try:
        # Queued once all four run, so that they compete for every batch from the start.
        recipients = [wa_id(i) for i in range(100)]
        queued = queue_texts(engine, 400, recipients=recipients, chunk=200)
        assert wait_until(lambda: not outbox(engine), timeout=60), started[0].errors()
        for worker in started:
            worker.terminate()
        stopped = [worker.stop() for worker in started]
        stored = messages(engine, queued)
        with Session(engine) as session:
            assert session.exec(select(col(OutboxItem.id))).all() == []
    finally:
        engine.dispose()

    assert fake.delivered() == Counter({q.marker: 1 for q in queued})  # none twice, none lost
    counts = [sent_by(output) for output in stopped]
    assert sum(counts) == 400
    assert all(count > 0 for count in counts), counts  # all four took part
    assert len({m.wamid for m in stored.values()}) == 400
    assert all(m.status == "sent" for m in stored.values())


def test_on_postgresql_a_queued_row_wakes_an_idle_dispatcher_in_another_process_at_once(
    postgres_url: str,
    fake: FakeGraph,
    worker_env: dict[str, str],
    workers: StartWorker,
) -> None:
    env = {**worker_env, "DATABASE_URL": postgres_url}
    worker = workers(env, "--poll-seconds", "60")  # polling alone would find it in a minute
    worker.wait_running()
    time.sleep(0.5)  # past its first look at the outbox: idle now

    engine = make_engine(postgres_url)
    try:
        [queued] = queue_texts(engine, 1)  # NOTIFY at commit, as the webhook and the API do
        assert fake.wait_for(lambda f: queued.marker in f.delivered(), timeout=10), worker.errors()
    finally:
        engine.dispose()
    assert sent_by(worker.stop()) == 1


def test_a_database_outage_mid_send_loses_nothing_and_sends_again_only_what_was_unsettled(
    postgres_url: str,
    app_config: dict[str, str],
    fake: FakeGraph,
) -> None:
    """PostgreSQL cut for two seconds under a sending dispatcher: it neither dies nor hangs."""
    target = urlsplit(postgres_url.replace("postgresql+psycopg", "postgresql"))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.start()
    proxied = postgres_url.replace(
        f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{proxy.port}"
    )
    app = create_app({**app_config, "DATABASE_URL": proxied})
    direct = make_engine(postgres_url)
    fake.latency = 0.02
    batch_size = 20
    dispatcher = services(app).dispatcher(
        transport=graph_client(fake),
        batch_size=batch_size,
        concurrency=4,
        lease=timedelta(seconds=2),
        poll_seconds=0.1,
    )
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    try:
        queued = queue_texts(direct, 300, recipients=[wa_id(i) for i in range(60)])
        thread.start()
        assert fake.wait_for(lambda f: len(f.deliveries()) >= 50, timeout=20)
        proxy.stop()
        time.sleep(2)
        assert thread.is_alive()
        proxy.start()  # the same port again
        assert wait_until(lambda: not outbox(direct), timeout=60)
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(20)
        proxy.stop()
        services(app).engine.dispose()

    delivered = fake.delivered()
    assert [q for q in queued if delivered[q.marker] == 0] == []  # none lost
    twice = [q for q in queued if delivered[q.marker] > 1]
    # At least once: only rows sent while their settlement could not be committed went twice.
    assert len(twice) <= batch_size, len(twice)
    stored = messages(direct, queued)
    direct.dispose()
    assert all(m.status == "sent" and m.wamid for m in stored.values())
