"""Engine and sessions for SQLite and PostgreSQL (psycopg 3)."""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from sqlalchemy import event, text
from sqlalchemy.engine import Engine, make_url
from sqlalchemy.exc import (
    DBAPIError,
    DisconnectionError,
    InterfaceError,
    OperationalError,
)
from sqlalchemy.exc import TimeoutError as PoolTimeout
from sqlmodel import Session, create_engine

from storage.libpq_statement import doubt_prepared, watch_prepared
from storage.lone_connections import keep_lone_connections


def normalise_url(url: str) -> str:
    """postgres:// and postgresql:// mean psycopg 3 here; SQLite paths are made to exist."""
    parsed = make_url(url)
    if parsed.drivername in ("postgres", "postgresql"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    return parsed.render_as_string(hide_password=False)


def make_engine(url: str) -> Engine:
    url = normalise_url(url)
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_engine(
            url,
            connect_args={"timeout": 30, "check_same_thread": False},
            hide_parameters=True,  # errors must not carry numbers or consent texts into logs
        )
        _serialise_sqlite_writes(engine)
        return engine
    engine = create_engine(
        url,
        pool_size=10,
        max_overflow=20,
        pool_timeout=10,
        connect_args={"connect_timeout": 5},
        hide_parameters=True,
    )
    _ping_when_idle(engine)
    watch_prepared(engine)
    keep_lone_connections(engine, ping_after_idle=PING_AFTER_IDLE_SECONDS)
    return engine


# A connection back in use within this many seconds is not pinged first: under load the ping
# was one round trip in four of a status's intake. One idle longer (a database restart may
# have gone unnoticed meanwhile) is checked as pool_pre_ping would, and replaced if dead.
PING_AFTER_IDLE_SECONDS = 10.0


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def on_checkin(_dbapi_connection, record) -> None:  # type: ignore[no-untyped-def]
        record.info["checked_in_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def on_checkout(dbapi_connection, record, _proxy) -> None:  # type: ignore[no-untyped-def]
        idle_since = record.info.get("checked_in_at")
        if idle_since is not None and time.monotonic() - idle_since < PING_AFTER_IDLE_SECONDS:
            return
        try:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SELECT 1")
            dbapi_connection.rollback()  # the ping's own transaction, not the caller's
            doubt_prepared(record.info)  # psycopg's rollback may deallocate them
        except Exception as exc:
            # The pool discards this connection and checks out another (up to three times).
            raise DisconnectionError("connection found dead on checkout") from exc


def _serialise_sqlite_writes(engine: Engine) -> None:
    """Take SQLite's write lock at BEGIN, so concurrent writers wait instead of deadlocking."""

    @event.listens_for(engine, "connect")
    def on_connect(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we issue BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def on_begin(connection) -> None:  # type: ignore[no-untyped-def]
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def is_postgres(engine: Engine) -> bool:
    return engine.dialect.name == "postgresql"


@contextmanager
def session_scope(engine: Engine) -> Iterator[Session]:
    """One transaction: committed when the block ends, rolled back if it raises."""
    with Session(engine, expire_on_commit=False) as session:
        try:
            yield session
            session.commit()
        except BaseException:
            session.rollback()
            raise


def ping(engine: Engine) -> None:
    with engine.connect() as connection:
        connection.execute(text("SELECT 1"))


def storage_unavailable(exc: BaseException) -> bool:
    """Whether the database failed rather than refused this data: no connection, a lost one,
    a locked SQLite file, a deadlock. Trying again later may succeed; the data was not at fault.
    """
    if isinstance(exc, OperationalError | InterfaceError | PoolTimeout | DisconnectionError):
        return True
    return isinstance(exc, DBAPIError) and exc.connection_invalidated
