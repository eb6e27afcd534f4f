"""Dispatchers as separate processes (`flask --app wsgi outbox work`): crashes and concurrency."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from urllib.parse import urlsplit

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

from bot import create_app
from bot.wiring.services import services
from storage.db import make_engine
from storage.models import OutboxItem
from tests.clock import ManualClock
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    Queued,
    Worker,
    end_leases,
    graph_client,
    messages,
    outbox,
    queue_texts,
    running,
    wa_id,
)
from tests.tcp_proxy import TcpProxy
from tests.waiting import wait_until

StartWorker = Callable[..., Worker]
# Each worker is a Python process that takes seconds to start on a loaded two-core machine:
# these tests get more than the suite's two minutes before a hang fails them.
PROCESSES_TIMEOUT = pytest.mark.timeout(300)


def sent_by(output: str) -> int:
    """The sent count in the stats line a worker prints when it stops."""
    match = re.search(r"DispatchStats\(sent=(\d+)", output)
    assert match, f"no stats line in {output!r}"
    return int(match.group(1))


def all_delivered(queued: list[Queued]) -> Callable[[FakeGraph], bool]:
    markers = {q.marker for q in queued}
    return lambda fake: markers <= set(fake.delivered())


@PROCESSES_TIMEOUT
def test_a_dispatcher_killed_mid_batch_loses_nothing_once_another_starts(
    engine: Engine,
    fake: FakeGraph,
    worker_env: dict[str, str],
    workers: StartWorker,
) -> None:
    meta = fake.hold()
    queued = queue_texts(engine, 150)
    options = ("--batch-size", "20", "--concurrency", "4")

    first = workers(worker_env, *options)
    assert meta.wait_held(4), first.errors()
    meta.release(30)  # thirty answers, then four sends waiting for Meta: mid-batch
    assert fake.wait_for(lambda f: len(f.deliveries()) == 30 and meta.held == 4), first.errors()
    first.kill()
    # SIGKILL: no shutdown ran. What it held stays claimed until the lease ends.
    in_flight = {row.message_id for row in outbox(engine) if row.claimed_by}
    assert len(in_flight) >= 4
    # Its leases end now rather than in a minute: the time a lease lasts is not under test.
    assert end_leases(engine) == len(in_flight)
    meta.release()  # Meta answers the dead worker's last sends too

    second = workers(worker_env, *options)
    assert fake.wait_for(all_delivered(queued)), second.errors()
    assert wait_until(lambda: not outbox(engine), timeout=30), second.errors()
    second.stop()

    delivered = fake.delivered()
    lost = [q for q in queued if delivered[q.marker] == 0]
    assert lost == []
    duplicated = {q.message_id for q in queued if delivered[q.marker] > 1}
    # At least once: only a row in flight when the process died may have gone out twice.
    assert duplicated <= in_flight
    assert all(m.status == "sent" and m.wamid for m in messages(engine, queued).values())


@PROCESSES_TIMEOUT
def test_four_dispatcher_processes_on_postgresql_never_send_a_row_twice(
    postgres_url: str,
    fake: FakeGraph,
    worker_env: dict[str, str],
    workers: StartWorker,
    tmp_path: Path,
) -> None:
    meta = fake.hold()
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
        # Four sends waiting for Meta from each of the four (that is all its threads): every
        # one has claimed its share before any answer lets another claim more.
        assert meta.wait_held(16), started[0].errors()
        meta.release()
        assert fake.wait_for(all_delivered(queued), timeout=60), started[0].errors()
        assert wait_until(lambda: not outbox(engine), timeout=30), started[0].errors()
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


@PROCESSES_TIMEOUT
def test_on_postgresql_a_queued_row_wakes_an_idle_dispatcher_in_another_process_at_once(
    postgres_url: str,
    fake: FakeGraph,
    worker_env: dict[str, str],
    workers: StartWorker,
) -> None:
    # At debug level it says when it has nothing left to do and starts waiting.
    env = {**worker_env, "DATABASE_URL": postgres_url, "LOG_LEVEL": "DEBUG"}
    worker = workers(env, "--poll-seconds", "60")  # polling alone would find it in a minute
    worker.wait_running()
    worker.wait_logged("nothing to send; waiting")  # past its first look: idle now

    engine = make_engine(postgres_url)
    try:
        [queued] = queue_texts(engine, 1)  # NOTIFY at commit, as the webhook and the API do
        assert fake.wait_for(lambda f: queued.marker in f.delivered(), timeout=30), worker.errors()
    finally:
        engine.dispose()
    assert sent_by(worker.stop()) == 1


def test_a_database_outage_mid_send_loses_nothing_and_sends_again_only_what_was_unsettled(
    postgres_url: str,
    app_config: dict[str, str],
    fake: FakeGraph,
) -> None:
    """PostgreSQL cut under a sending dispatcher: it neither dies nor hangs."""
    target = urlsplit(postgres_url.replace("postgresql+psycopg", "postgresql"))
    proxy = TcpProxy(target.hostname or "127.0.0.1", target.port or 5432)
    proxy.start()
    proxied = postgres_url.replace(
        f"{target.hostname}:{target.port or 5432}", f"127.0.0.1:{proxy.port}"
    )
    app = create_app({**app_config, "DATABASE_URL": proxied})
    direct = make_engine(postgres_url)
    meta = fake.hold()
    batch_size = 20
    lease = timedelta(seconds=60)
    queued = queue_texts(direct, 300, recipients=[wa_id(i) for i in range(60)])
    clock = ManualClock()  # the leases of the rows it could not settle end when the test says

    def no_pause(seconds: float) -> None:
        """Between tries to settle against a database that is down, and for the rate."""

    dispatcher = services(app).dispatcher(
        transport=graph_client(fake),
        batch_size=batch_size,
        concurrency=4,
        lease=lease,
        poll_seconds=0.1,
        retry_seconds=0.05,
        clock=clock.utcnow,
        sleep=no_pause,
    )
    try:
        with running(dispatcher) as run:
            assert meta.wait_held(4)
            meta.release(50)
            assert fake.wait_for(lambda f: len(f.deliveries()) == 50 and meta.held == 4)
            proxy.stop()  # the database goes away while four sends wait for Meta's answer
            meta.release()
            # Meta answers; settling fails, then claiming does: the loop waits, nothing in
            # flight, the rows it could not settle left to their lease.
            assert dispatcher.wait_stalled(timeout=60)
            assert run.thread.is_alive()
            clock.advance(lease.total_seconds() + 1)
            proxy.start()  # the same port again
            assert dispatcher.wait_drained(timeout=60)
            assert run.thread.is_alive()
        assert outbox(direct) == []
    finally:
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
