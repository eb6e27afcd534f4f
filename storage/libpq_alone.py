"""Constant statements run straight on libpq as a transaction of their own: one round trip.

What the webhook does most, a body of one status, is one statement with its COMMIT. Through a
psycopg cursor it paid, besides the round trip, for the switch to autocommit and back and the
cursor's own work (storage.libpq_statement). A connection outside a transaction runs a lone
statement in a transaction of its own, so nothing is switched. libpq releases the GIL while it
waits, as psycopg does, so the dispatcher's thread runs meanwhile.

Several such statements sent together in libpq's pipeline mode form one implicit transaction
(run_together): the single statuses of requests served at once (storage.status_groups), one
round trip and one COMMIT for them all.

Errors are psycopg's, built from the result as psycopg builds them, for the caller to raise as
it raises any other driver error.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import psycopg
from psycopg import pq
from sqlalchemy.pool import PoolProxiedConnection

from storage.libpq_pipeline import results_to_sync
from storage.libpq_statement import (
    NamedStatement,
    Prepared,
    decoded,
    missing,
    prepared_on,
    raise_failed,
)


def run_alone(
    pooled: PoolProxiedConnection, statement: NamedStatement, params: Mapping[str, object]
) -> list[tuple[str | None, ...]]:
    """Run the statement as its own transaction; its rows as text (None for NULL).

    The connection must be outside a transaction, as the pool hands it out: run inside one,
    the statement would share that transaction's fate.
    """
    driver = _outside_a_transaction(pooled)
    pgconn = driver.pgconn
    prepared = prepared_on(pooled)
    encoding = driver.info.encoding
    values = statement.values(params, encoding)
    if statement.name not in prepared.held:
        _prepare(driver, statement, prepared)
    result = pgconn.exec_prepared(statement.name, values)
    if missing(result):  # deallocated behind our back: prepared again, once
        prepared.discard(statement.name)
        _prepare(driver, statement, prepared)
        result = pgconn.exec_prepared(statement.name, values)
    raise_failed([result], encoding)
    return decoded(result, encoding)


def run_together(
    pooled: PoolProxiedConnection, statements: Sequence[tuple[NamedStatement, Mapping[str, object]]]
) -> list[list[tuple[str | None, ...]]]:
    """Run the statements as one transaction of their own, each one's rows as run_alone gives
    them: sent together in pipeline mode, they form one implicit transaction, committed at the
    pipeline's sync (one round trip, one COMMIT) or, should any fail, rolled back whole.

    A statement the server no longer holds fails the whole, as any other error does, and is
    prepared again next time.
    """
    driver = _outside_a_transaction(pooled)
    pgconn = driver.pgconn
    prepared = prepared_on(pooled)
    encoding = driver.info.encoding
    for statement, _ in statements:
        if statement.name not in prepared.held:
            _prepare(driver, statement, prepared)
    pgconn.enter_pipeline_mode()
    try:
        for statement, params in statements:
            pgconn.send_query_prepared(statement.name, statement.values(params, encoding))
        pgconn.pipeline_sync()
        results = results_to_sync(pgconn)
    except BaseException:
        if pooled.is_valid:
            pooled.invalidate()  # left in pipeline mode: nothing else can use it
        raise
    pgconn.exit_pipeline_mode()
    for (statement, _), result in zip(statements, results, strict=True):
        if missing(result):  # prepared again next time
            prepared.discard(statement.name)
    raise_failed(results, encoding)
    return [decoded(result, encoding) for result in results]


def _outside_a_transaction(pooled: PoolProxiedConnection) -> psycopg.Connection[Any]:
    """The pooled connection's driver, refused if inside a transaction, whose fate statements
    run as their own transaction would otherwise share."""
    driver: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
    if driver.pgconn.transaction_status != pq.TransactionStatus.IDLE:
        raise psycopg.ProgrammingError("a lone statement cannot run inside a transaction")
    return driver


def _prepare(
    driver: psycopg.Connection[Any], statement: NamedStatement, prepared: Prepared
) -> None:
    pgconn = driver.pgconn
    if statement.name in prepared.perhaps:
        raise_failed([pgconn.close_prepared(statement.name)], driver.info.encoding)
    raise_failed([pgconn.prepare(statement.name, statement.sql)], driver.info.encoding)
    prepared.add(statement.name)
