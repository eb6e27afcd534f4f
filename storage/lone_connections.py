"""Connections kept out of the pool's way for lone statements (storage.libpq_alone).

A body of one status is one statement with its COMMIT. Checked out of SQLAlchemy's pool and
returned, its connection cost that request about a tenth of its CPU: the pool's checkout,
checkin and reset events, its queue, and psycopg's rollback call on return. A lone statement
needs none of it: it finds its connection outside a transaction and leaves it so. So an
engine keeps the connections its lone statements used, still checked out of its pool, and
hands them to the next lone statement directly.

They number at most the lone statements running at once (a thread each), and they count
against the pool's size as any checked-out connection does. One kept idle longer than the
pool's own ping interval is pinged before use, as the pool pings its own, and replaced if
dead. Disposing of the engine closes them.
"""

from __future__ import annotations

import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from queue import Empty, SimpleQueue
from typing import Any

from psycopg import pq
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlalchemy.pool import Pool, PoolProxiedConnection


class _Kept:
    """An engine's idle kept connections, with when each was last given back."""

    def __init__(self, ping_after_idle: float) -> None:
        self.ping_after_idle = ping_after_idle
        self.idle: SimpleQueue[tuple[PoolProxiedConnection, float]] = SimpleQueue()


_KEPT: weakref.WeakKeyDictionary[Engine, _Kept] = weakref.WeakKeyDictionary()


def keep_lone_connections(engine: Engine, *, ping_after_idle: float) -> None:
    """Let the engine keep connections for lone statements; close them when it is disposed."""
    _KEPT[engine] = _Kept(ping_after_idle)

    @event.listens_for(engine, "engine_disposed")
    def on_disposed(disposed: Engine) -> None:
        _close_all(_KEPT[disposed])


@contextmanager
def lone_connection(engine: Engine) -> Iterator[PoolProxiedConnection]:
    """A connection outside a transaction, for a statement that leaves it so."""
    kept = _KEPT.get(engine)
    if kept is None:
        raise RuntimeError("lone statements need an engine made by storage.db.make_engine")
    pool = engine.pool
    pooled = _take(kept) or engine.raw_connection()
    try:
        yield pooled
    finally:
        _give_back(kept, pool, engine.pool, pooled)


def _take(kept: _Kept) -> PoolProxiedConnection | None:
    now = time.monotonic()
    while True:
        try:
            pooled, given_back_at = kept.idle.get_nowait()
        except Empty:
            return None
        if now - given_back_at < kept.ping_after_idle or _alive(pooled):
            return pooled
        pooled.invalidate()  # a restarted database's: the pool connects afresh
        pooled.close()


def _give_back(
    kept: _Kept, taken_from: Pool, pool_now: Pool, pooled: PoolProxiedConnection
) -> None:
    if not pooled.is_valid:  # lost while in use: the pool replaces it
        pooled.close()
    elif taken_from is not pool_now:  # the engine was disposed of meanwhile
        pooled.invalidate()
        pooled.close()
    elif _idle(pooled.driver_connection):
        kept.idle.put((pooled, time.monotonic()))
    else:  # left inside a transaction: the pool's reset rolls it back
        pooled.close()


def _idle(driver: Any) -> bool:
    return bool(driver.pgconn.transaction_status == pq.TransactionStatus.IDLE)


def _alive(pooled: PoolProxiedConnection) -> bool:
    """The pool's ping, straight on libpq: outside a transaction it leaves none open."""
    try:
        result = pooled.driver_connection.pgconn.exec_(b"SELECT 1")  # type: ignore[union-attr]
    except Exception:
        return False
    return bool(result.status == pq.ExecStatus.TUPLES_OK)


def _close_all(kept: _Kept) -> None:
    while True:
        try:
            pooled, _ = kept.idle.get_nowait()
        except Empty:
            return
        pooled.invalidate()
        pooled.close()
