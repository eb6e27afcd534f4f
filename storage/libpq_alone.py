"""A constant statement run straight on libpq as a transaction of its own: one round trip.

What the webhook does most, a body of one status, is one statement with its COMMIT. Through a
psycopg cursor it paid, besides the round trip, for the switch to autocommit and back, a cursor,
the query's conversion from named parameters, psycopg's prepare bookkeeping and its loaders:
together more of the worker's CPU than the round trip itself. Here the statement is prepared
once per connection under a name of its own and run with its values as text (written here,
from the same values a psycopg cursor would be given). A connection
outside a transaction runs a lone statement in a transaction of its own, so nothing is switched.
libpq releases the GIL while it waits, as psycopg does, so the dispatcher's thread runs meanwhile.

Errors are psycopg's, built from the result as psycopg builds them, for the caller to raise as
it raises any other driver error.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result
from sqlalchemy.pool import PoolProxiedConnection

from storage.types import aware_text

_NAMED = re.compile(r"%\((\w+)\)s")
_MISSING_STATEMENT = b"26000"  # invalid_sql_statement_name: e.g. after DISCARD ALL


@dataclass(frozen=True, slots=True)
class LoneStatement:
    """A statement written with psycopg's %(name)s placeholders, sent as libpq's $1, $2..."""

    name: bytes
    sql: bytes
    parameters: tuple[str, ...] = field(repr=False)

    @classmethod
    def of(cls, name: str, sql: str) -> LoneStatement:
        order: dict[str, int] = {}

        def number(match: re.Match[str]) -> str:
            return f"${order.setdefault(match[1], len(order) + 1)}"

        numbered = _NAMED.sub(number, sql)
        return cls(name=name.encode(), sql=numbered.encode(), parameters=tuple(order))

    def values(self, params: Mapping[str, object], encoding: str) -> list[bytes | None]:
        """The parameters in the statement's order, as libpq's text values."""
        return [
            None if (text := _text(params[name])) is None else text.encode(encoding)
            for name in self.parameters
        ]


def run_alone(
    pooled: PoolProxiedConnection, statement: LoneStatement, params: Mapping[str, object]
) -> list[tuple[str | None, ...]]:
    """Run the statement as its own transaction; its rows as text (None for NULL).

    The connection must be outside a transaction, as the pool hands it out: run inside one,
    the statement would share that transaction's fate.
    """
    driver: psycopg.Connection[Any] = pooled.driver_connection  # type: ignore[assignment]
    pgconn = driver.pgconn
    if pgconn.transaction_status != pq.TransactionStatus.IDLE:
        raise psycopg.ProgrammingError("a lone statement cannot run inside a transaction")
    prepared: set[bytes] = pooled.info.setdefault("lone_statements", set())
    encoding = driver.info.encoding
    values = statement.values(params, encoding)
    if statement.name not in prepared:
        _prepare(driver, statement)
        prepared.add(statement.name)
    result = pgconn.exec_prepared(statement.name, values)
    if _missing(result):  # deallocated behind our back: prepared again, once
        _prepare(driver, statement)
        result = pgconn.exec_prepared(statement.name, values)
    if result.status != pq.ExecStatus.TUPLES_OK:
        raise error_from_result(result, encoding=encoding)
    return [
        tuple(_decoded(result.get_value(row, column), encoding) for column in range(result.nfields))
        for row in range(result.ntuples)
    ]


def _prepare(driver: psycopg.Connection[Any], statement: LoneStatement) -> None:
    result = driver.pgconn.prepare(statement.name, statement.sql)
    if result.status != pq.ExecStatus.COMMAND_OK:
        raise error_from_result(result, encoding=driver.info.encoding)


def _missing(result: pq.abc.PGresult) -> bool:
    return (
        result.status == pq.ExecStatus.FATAL_ERROR
        and result.error_field(pq.DiagnosticField.SQLSTATE) == _MISSING_STATEMENT
    )


def _text(value: object) -> str | None:
    """A value as PostgreSQL reads it from text: a time with its zone (a naive one refused)."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return aware_text(value)
    raise TypeError(f"{type(value).__name__} is not sent as text here")


def _decoded(value: bytes | None, encoding: str) -> str | None:
    return None if value is None else value.decode(encoding)
