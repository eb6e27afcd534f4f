"""The pool pings a connection only when it comes back from idling, on PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError

import storage.db

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_engines: Callable[[], Engine]) -> Engine:
    return postgres_engines()


def _kill_its_backend(engine: Engine, other_engine: Engine) -> None:
    """The pooled connection's server process ended, as by a database restart."""
    with engine.connect() as connection:
        pid = connection.execute(text("SELECT pg_backend_pid()")).scalar_one()
    with other_engine.connect() as connection:
        connection.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})


def test_a_connection_that_idled_is_pinged_and_replaced_when_dead(
    engine: Engine, other_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    _kill_its_backend(engine, other_engine)
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 0.0)  # it has idled long enough

    with engine.connect() as connection:
        assert connection.execute(text("SELECT 1")).scalar_one() == 1


def test_a_connection_back_in_use_at_once_is_not_pinged(
    engine: Engine, other_engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The contrast: without the ping the dead connection fails its first statement, which is
    what the ping saves an idle connection from (and a busy one the round trip)."""
    _kill_its_backend(engine, other_engine)
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 3600.0)

    with pytest.raises(OperationalError), engine.connect() as connection:
        connection.execute(text("SELECT 1"))
    with engine.connect() as connection:  # the pool dropped it: the next one is fresh
        assert connection.execute(text("SELECT 1")).scalar_one() == 1
