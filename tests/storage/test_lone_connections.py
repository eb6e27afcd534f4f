"""Connections kept for lone statements: the next one takes the last one's connection without
the pool; one idle too long is pinged and replaced if dead; disposing of the engine closes
them; one left in a transaction or lost is not kept."""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

import storage.db
from storage.db import storage_unavailable
from storage.lone_connections import lone_connection
from storage.status_steps import StatusRow
from storage.statuses_pg import record_and_commit

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_engines: Callable[[], Engine]) -> Engine:
    return postgres_engines()


def backend_pid(engine: Engine) -> int:
    with lone_connection(engine) as kept:
        return int(kept.driver_connection.info.backend_pid)


def terminate(other_engine: Engine, pid: int) -> None:
    """The backend ended, as by a database restart."""
    with other_engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def running(other_engine: Engine, pid: int) -> bool:
    with other_engine.connect() as connection:
        return bool(
            connection.execute(
                text("SELECT count(*) FROM pg_stat_activity WHERE pid = :pid"), {"pid": pid}
            ).scalar_one()
        )


def ends(other_engine: Engine, pid: int) -> bool:
    """Whether the backend ends, given a moment to after its client went."""
    deadline = time.monotonic() + 10
    while running(other_engine, pid):
        if time.monotonic() > deadline:
            return False
        time.sleep(0.05)
    return True


def status(n: int) -> StatusRow:
    return StatusRow(
        wamid=f"wamid.LONE{n}",
        status="delivered",
        meta_timestamp=datetime(2026, 5, 1, 12, 0, n, tzinfo=UTC),
        phone_number_id="1065",
        recipient_id="4915550001",
        recipient_user_id=None,
        recipient_participant_id=None,
        error_code=None,
        error_title=None,
        raw={"n": n},
    )


def test_the_next_lone_statement_takes_the_last_ones_connection_without_the_pool(
    engine: Engine,
) -> None:
    checkouts: list[object] = []
    event.listen(engine, "checkout", lambda *_: checkouts.append(1))

    first = backend_pid(engine)
    assert record_and_commit(engine, [status(1)]).new == (True,)
    assert backend_pid(engine) == first
    assert len(checkouts) == 1  # only the first came from the pool


def test_lone_statements_at_once_each_have_a_connection_and_both_are_kept(
    engine: Engine,
) -> None:
    with lone_connection(engine) as one, lone_connection(engine) as two:
        pids = {one.driver_connection.info.backend_pid, two.driver_connection.info.backend_pid}
    assert len(pids) == 2
    with lone_connection(engine) as one, lone_connection(engine) as two:
        again = {one.driver_connection.info.backend_pid, two.driver_connection.info.backend_pid}
    assert again == pids


def test_c26_a_status_on_a_kept_connection_that_died_while_idle_is_stored(
    postgres_engines: Callable[[], Engine], other_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 0.0)  # every one has idled
    engine = postgres_engines()
    dead = backend_pid(engine)
    terminate(other_engine, dead)

    assert record_and_commit(engine, [status(2)]).new == (True,)
    assert backend_pid(engine) != dead


def test_c26_a_status_on_a_kept_connection_that_died_in_use_is_redelivered_then_stored(
    postgres_engines: Callable[[], Engine], other_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contrast: unpinged, the dead connection fails its statement as storage down (503,
    Meta redelivers), and is not kept: the next statement has a live one."""
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 3600.0)
    engine = postgres_engines()
    dead = backend_pid(engine)
    terminate(other_engine, dead)

    with pytest.raises(DBAPIError) as refused:
        record_and_commit(engine, [status(3)])
    assert storage_unavailable(refused.value)
    assert record_and_commit(engine, [status(3)]).new == (True,)
    assert backend_pid(engine) != dead


def test_a_connection_left_inside_a_transaction_is_rolled_back_by_the_pool(
    engine: Engine,
) -> None:
    with lone_connection(engine) as kept:
        kept.driver_connection.pgconn.exec_(b"BEGIN")
    with lone_connection(engine) as kept:
        assert kept.driver_connection.info.transaction_status.name == "IDLE"


def test_disposing_of_the_engine_closes_its_kept_connections(
    engine: Engine, other_engine: Engine
) -> None:
    kept = backend_pid(engine)
    assert running(other_engine, kept)
    engine.dispose()
    assert ends(other_engine, kept)


def test_a_connection_in_use_while_the_engine_is_disposed_of_is_closed_when_given_back(
    engine: Engine, other_engine: Engine
) -> None:
    with lone_connection(engine) as in_use:
        pid = in_use.driver_connection.info.backend_pid
        engine.dispose()
        assert running(other_engine, pid)
    assert ends(other_engine, pid)
