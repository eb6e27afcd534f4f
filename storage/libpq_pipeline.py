"""A transaction's BEGIN sent with its first statement, its COMMIT with its last, and several
reads together, in libpq's pipeline mode: one network round trip each.

psycopg sends BEGIN in a round trip of its own before a transaction's first statement, and
COMMIT in another after its last, even in its own pipeline mode. A new customer's first message
was four round trips (BEGIN, the lookup, the write, COMMIT), two of them carrying no work, and
a worker spent them waiting. psycopg asks the server whether a transaction is open: one begun
here is one it continues, and one committed here is one it has nothing left to commit for.

Statements are named and prepared once per connection (storage.libpq_statement); the wait for
the server is on the socket (select), which releases the GIL as psycopg's own waits do.
SQLAlchemy's statement events fire for these statements as for any other, so what listens to
the engine sees them.
"""

from __future__ import annotations

import select
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from typing import Any

import psycopg
from psycopg import pq
from psycopg.adapt import Transformer
from sqlalchemy import Select
from sqlalchemy.engine import Connection

from storage.libpq_statement import (
    NamedStatement,
    as_sqlalchemy_errors,
    missing,
    named,
    prepared_on,
    raise_failed,
)
from storage.select_text import as_text, processed

_BEGIN = b"BEGIN"
_COMMIT = b"COMMIT"
_ROLLBACK = b"ROLLBACK"
_IDLE = pq.TransactionStatus.IDLE
_INTRANS = pq.TransactionStatus.INTRANS
_WHAT = "pipelined statement"  # what an error names, never the values


def begin_with(
    connection: Connection, sql: str, params: Mapping[str, object]
) -> Sequence[tuple[Any, ...]]:
    """The statement's rows, loaded as psycopg loads them; when the connection's transaction
    has not begun, its BEGIN goes with it."""
    driver = _driver(connection)
    if driver.pgconn.transaction_status != _IDLE:
        return connection.exec_driver_sql(sql, dict(params)).all()
    _begun(connection)
    with _announced(connection, [(sql, params)]), _raised(connection, driver):
        results = _pipelined(connection, [_BEGIN, (sql, params)])
        if missing(results[1]):  # deallocated behind our back: begun again, prepared again
            driver.pgconn.exec_(_ROLLBACK)
            prepared_on(connection.connection).discard(named(sql).name)
            results = _pipelined(connection, [_BEGIN, (sql, params)])
        raise_failed(results, driver.info.encoding)
        loader = Transformer(driver)
        loader.set_pgresult(results[1])
        return loader.load_rows(0, results[1].ntuples, tuple)


def commit_with(connection: Connection, sql: str, params: Mapping[str, object]) -> None:
    """The statement, then COMMIT (after BEGIN, when no transaction is open). If the statement
    fails, nothing is committed: its error is raised and the transaction is left to roll back,
    as any failed statement leaves it."""
    driver = _driver(connection)
    status = driver.pgconn.transaction_status
    if status not in (_IDLE, _INTRANS):
        raise psycopg.ProgrammingError(f"commit_with on a transaction in state {status.name}")
    steps: list[_Step] = [_BEGIN] if status == _IDLE else []
    _begun(connection)
    steps += [(sql, params), _COMMIT]
    with _announced(connection, [(sql, params)]), _raised(connection, driver):
        results = _pipelined(connection, steps)
        if missing(results[-2]):  # the transaction is lost; the next one prepares it again
            prepared_on(connection.connection).discard(named(sql).name)
        raise_failed(results, driver.info.encoding)


def select_together(
    connection: Connection, queries: Sequence[tuple[Select[Any], Mapping[str, object]]]
) -> list[list[tuple[Any, ...]]]:
    """Each query's rows, as SQLAlchemy's column types return them, all in one round trip
    (with BEGIN when the connection's transaction has not begun)."""
    driver = _driver(connection)
    begin = driver.pgconn.transaction_status == _IDLE
    if begin:
        _begun(connection)
    statements = [as_text(query, connection.dialect, params) for query, params in queries]
    steps: list[_Step] = [_BEGIN] if begin else []
    steps += [
        (sql, values) if _few(params) else _Once(sql, values)
        for (sql, values), (_, params) in zip(statements, queries, strict=True)
    ]
    with _announced(connection, statements), _raised(connection, driver):
        results = _pipelined(connection, steps)
        raise_failed(results, driver.info.encoding)
    loader = Transformer(driver)
    read = []
    for (query, _), result in zip(queries, results[1:] if begin else results, strict=True):
        loader.set_pgresult(result)
        rows = loader.load_rows(0, result.ntuples, tuple)
        read.append(processed(query, connection.dialect, rows))
    return read


# A list this long makes a statement text few bodies share: sent unnamed, kept by no session.
_FEW = 4


def _few(params: Mapping[str, object]) -> bool:
    return all(len(v) <= _FEW for v in params.values() if isinstance(v, list | tuple))


@dataclass(frozen=True, slots=True)
class _Once:
    """A statement parsed for this one run (the unnamed statement): a text prepared for every
    length of a list would pile up in the server's session, one plan each."""

    sql: str
    params: Mapping[str, object]


_Step = bytes | tuple[str, Mapping[str, object]] | _Once


def _pipelined(connection: Connection, steps: list[_Step]) -> list[pq.abc.PGresult]:
    """Each step's result (a command's, or a statement's), sent and read in one round trip."""
    pooled = connection.connection
    driver = _driver(connection)
    pgconn = driver.pgconn
    prepared = prepared_on(pooled)
    preparing: dict[bytes, int] = {}  # names prepared here: how many results come before its own
    pgconn.enter_pipeline_mode()
    try:
        for step in steps:
            if isinstance(step, bytes):
                pgconn.send_query_params(step, None)
                continue
            if isinstance(step, _Once):
                once = NamedStatement.of("", step.sql)
                pgconn.send_query_params(once.sql, once.values(step.params, driver.info.encoding))
                continue
            statement = named(step[0])
            if statement.name not in prepared.held and statement.name not in preparing:
                preparing[statement.name] = 1
                if statement.name in prepared.perhaps:
                    pgconn.send_close_prepared(statement.name)
                    preparing[statement.name] = 2
                pgconn.send_prepare(statement.name, statement.sql)
            pgconn.send_query_prepared(
                statement.name, statement.values(step[1], driver.info.encoding)
            )
        pgconn.pipeline_sync()
        results = results_to_sync(pgconn)
    except BaseException as exc:
        _lose(connection, exc)  # left in pipeline mode: nothing else can use it
        raise
    pgconn.exit_pipeline_mode()
    if not preparing:
        return results
    answered = iter(results)  # each Close and Parse answered before its statement's result
    results = []
    for step in steps:
        if isinstance(step, tuple) and (name := named(step[0]).name) in preparing:
            ahead = [next(answered) for _ in range(preparing.pop(name))]
            if ahead[-1].status == pq.ExecStatus.COMMAND_OK:
                prepared.add(name)
        results.append(next(answered))
    return results


def results_to_sync(pgconn: pq.abc.PGconn) -> list[pq.abc.PGresult]:
    """Send what is queued, then read every result up to the pipeline's sync, waiting on the
    socket (no GIL held) while the server works."""
    socket = pgconn.socket
    while pgconn.flush():  # the server may need to be read before it takes more
        readable, _, _ = select.select([socket], [socket], [])
        if readable:
            pgconn.consume_input()
    results: list[pq.abc.PGresult] = []
    while True:
        while pgconn.is_busy():
            select.select([socket], [], [])
            pgconn.consume_input()
        result = pgconn.get_result()
        if result is None:  # the end of one step's results
            continue
        if result.status == pq.ExecStatus.PIPELINE_SYNC:
            return results
        results.append(result)


def _begun(connection: Connection) -> None:
    """SQLAlchemy's transaction begun too (no SQL for psycopg), so its commit and rollback
    reach the one begun here."""
    if not connection.in_transaction():
        connection.begin()


def _driver(connection: Connection) -> psycopg.Connection[Any]:
    return connection.connection.driver_connection  # type: ignore[return-value]


def _raised(connection: Connection, driver: psycopg.Connection[Any]) -> Any:
    return as_sqlalchemy_errors(_WHAT, connection.dialect, driver, partial(_lose, connection))


def _lose(connection: Connection, exc: BaseException) -> None:
    if not connection.invalidated:
        connection.invalidate(exc)


@contextmanager
def _announced(
    connection: Connection, statements: Sequence[tuple[str, Mapping[str, object]]]
) -> Iterator[None]:
    """SQLAlchemy's before/after_cursor_execute for statements sent here (no cursor, no
    execution context)."""
    for statement, values in statements:
        connection.dispatch.before_cursor_execute(connection, None, statement, values, None, False)
    yield
    for statement, values in statements:
        connection.dispatch.after_cursor_execute(connection, None, statement, values, None, False)
