"""Statements run straight on libpq, beside psycopg: named, prepared once per connection, with
their values sent as text, and their errors raised as SQLAlchemy raises any driver's.

The webhook's busiest statements go this way (storage.libpq_alone, storage.libpq_pipeline):
through a psycopg cursor each paid, besides its round trips, for a cursor, the conversion of
named parameters, psycopg's prepare bookkeeping and its loaders. The values here are written as
text from the same values a psycopg cursor would be given.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Callable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime
from functools import lru_cache
from typing import Any

import psycopg
from psycopg import pq
from psycopg.errors import error_from_result
from sqlalchemy import event
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.exc import DBAPIError
from sqlalchemy.pool import PoolProxiedConnection

from storage.types import aware_text

_NAMED = re.compile(r"%\((\w+)\)s")
_MISSING_STATEMENT = b"26000"  # invalid_sql_statement_name: e.g. after DISCARD ALL
_PREPARED = "prepared_statements"
# The statements after which psycopg forgets its prepared statements, and the server's.
_DEALLOCATING = re.compile(r"\s*(DROP|ALTER|ROLLBACK|DISCARD|DEALLOCATE)\b", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class NamedStatement:
    """A statement written with psycopg's %(name)s placeholders, sent as libpq's $1, $2..."""

    name: bytes
    sql: bytes
    parameters: tuple[str, ...] = field(repr=False)

    @classmethod
    def of(cls, name: str, sql: str) -> NamedStatement:
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


@lru_cache(maxsize=512)
def named(sql: str) -> NamedStatement:
    """The statement under a name its text decides: the same on every connection, so a
    statement built per shape of its values is prepared once per shape."""
    return NamedStatement.of(
        f"optin_{hashlib.blake2b(sql.encode(), digest_size=8).hexdigest()}", sql
    )


@dataclass(slots=True)
class Prepared:
    """The names a connection's server session holds: surely, or perhaps (psycopg may have
    deallocated every prepared statement since). A name perhaps held is closed before it is
    prepared again: closing a name the server does not hold is no error, preparing one it
    holds is."""

    held: set[bytes] = field(default_factory=set)
    perhaps: set[bytes] = field(default_factory=set)

    def doubt(self) -> None:
        self.perhaps |= self.held
        self.held.clear()

    def add(self, name: bytes) -> None:
        self.held.add(name)
        self.perhaps.discard(name)

    def discard(self, name: bytes) -> None:
        """The server no longer holds it (it said so)."""
        self.held.discard(name)
        self.perhaps.discard(name)


def prepared_on(pooled: PoolProxiedConnection) -> Prepared:
    """The names prepared on this connection (it lives as long as the connection)."""
    prepared: Prepared = pooled.info.setdefault(_PREPARED, Prepared())
    return prepared


def doubt_prepared(info: dict[Any, Any]) -> None:
    """The connection's prepared names perhaps gone: psycopg, rolling back an open transaction
    or a savepoint, or seeing a DROP, ALTER, DISCARD ALL or DEALLOCATE ALL, deallocates every
    prepared statement of the session when it had prepared any of its own."""
    prepared: Prepared | None = info.get(_PREPARED)
    if prepared is not None:
        prepared.doubt()


def watch_prepared(engine: Engine) -> None:
    """Doubt a connection's prepared names after whatever may have deallocated them."""

    @event.listens_for(engine, "reset")
    def on_reset(dbapi_connection, record, _state) -> None:  # type: ignore[no-untyped-def]
        if dbapi_connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            doubt_prepared(record.info)

    @event.listens_for(engine, "rollback")
    def on_rollback(connection) -> None:  # type: ignore[no-untyped-def]
        if connection.invalidated:  # its connection is gone, and its names with it
            return
        pooled = connection.connection
        if pooled.driver_connection.pgconn.transaction_status != pq.TransactionStatus.IDLE:
            doubt_prepared(pooled.info)

    @event.listens_for(engine, "rollback_savepoint")
    def on_rollback_savepoint(connection, _name, _context) -> None:  # type: ignore[no-untyped-def]
        if not connection.invalidated:
            doubt_prepared(connection.connection.info)

    @event.listens_for(engine, "after_cursor_execute")
    def on_statement(connection, _cursor, statement, *_rest) -> None:  # type: ignore[no-untyped-def]
        if _DEALLOCATING.match(statement) and not connection.invalidated:
            doubt_prepared(connection.connection.info)


def missing(result: pq.abc.PGresult) -> bool:
    """Whether the statement failed because the server no longer knew its name."""
    return (
        result.status == pq.ExecStatus.FATAL_ERROR
        and result.error_field(pq.DiagnosticField.SQLSTATE) == _MISSING_STATEMENT
    )


def raise_failed(results: Sequence[pq.abc.PGresult], encoding: str) -> None:
    """psycopg's error for the first result that failed, as psycopg builds it."""
    for result in results:
        if result.status == pq.ExecStatus.FATAL_ERROR:
            raise error_from_result(result, encoding=encoding)


def decoded(result: pq.abc.PGresult, encoding: str) -> list[tuple[str | None, ...]]:
    """The result's rows as text (None for NULL)."""
    return [
        tuple(
            None if (value := result.get_value(row, column)) is None else value.decode(encoding)
            for column in range(result.nfields)
        )
        for row in range(result.ntuples)
    ]


@contextmanager
def as_sqlalchemy_errors(
    what: str, dialect: Dialect, driver: Any, lose: Callable[[BaseException], None]
) -> Iterator[None]:
    """A driver error raised as SQLAlchemy raises it, a lost connection invalidated, so callers
    tell storage down (503) from data refused (kept for support) as for any other statement."""
    try:
        yield
    except psycopg.Error as exc:
        lost = dialect.is_disconnect(exc, driver, None)
        if lost:
            lose(exc)
        raise DBAPIError.instance(
            what,
            None,  # never the values: numbers and texts stay out of logs
            exc,
            psycopg.Error,
            hide_parameters=True,
            connection_invalidated=lost,
            dialect=dialect,
        ) from exc


def _text(value: object) -> str | None:
    """A value as PostgreSQL reads it from text: a time with its zone (a naive one refused), a
    list of texts as an array."""
    if value is None or isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, int):
        return str(value)
    if isinstance(value, datetime):
        return aware_text(value)
    if isinstance(value, list | tuple) and all(isinstance(item, str) for item in value):
        return "{" + ",".join(_array_item(item) for item in value) + "}"
    raise TypeError(f"{type(value).__name__} is not sent as text here")


def _array_item(item: str) -> str:
    """An array element quoted, so a comma, brace, quote or the word NULL stays text."""
    return '"' + item.replace("\\", "\\\\").replace('"', '\\"') + '"'
