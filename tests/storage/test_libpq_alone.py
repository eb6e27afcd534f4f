"""A lone statement on libpq (a body of one status), or several run together: their own
transaction, prepared once per connection and again when the server forgot it, refused inside
a transaction, errors as psycopg's."""

from __future__ import annotations

from collections.abc import Iterator

import psycopg
import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine
from sqlalchemy.pool import PoolProxiedConnection

from storage.libpq_alone import run_alone, run_together
from storage.libpq_statement import NamedStatement
from tests.storage.helpers import scratch_table

pytestmark = pytest.mark.postgres

ADD = NamedStatement.of(
    "test_lone_add",
    "INSERT INTO lone_rows (word, n) VALUES (%(word)s, %(n)s::int + %(n)s::int)"
    " RETURNING word, n, NULL::text",
)


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    with scratch_table(postgres_url, "lone_rows", "word text UNIQUE, n int") as engine:
        yield engine


@pytest.fixture
def pooled(engine: Engine) -> Iterator[PoolProxiedConnection]:
    """A connection as the pool hands it out, closed after the test."""
    connection = engine.raw_connection()
    yield connection
    connection.close()


def rows(engine: Engine) -> list[tuple[str, int]]:
    with engine.connect() as connection:
        return [tuple(row) for row in connection.execute(text("SELECT word, n FROM lone_rows"))]


def test_placeholders_are_numbered_in_order_of_first_use() -> None:
    assert ADD.sql == (
        b"INSERT INTO lone_rows (word, n) VALUES ($1, $2::int + $2::int) RETURNING word, n,"
        b" NULL::text"
    )
    assert ADD.parameters == ("word", "n")
    assert ADD.values({"n": "2", "word": "é", "unused": "x"}, "utf-8") == [b"\xc3\xa9", b"2"]


def test_a_lone_statement_is_committed_when_it_returns(
    engine: Engine, pooled: PoolProxiedConnection
) -> None:
    assert run_alone(pooled, ADD, {"word": "مرحبا", "n": "21"}) == [("مرحبا", "42", None)]
    assert pooled.driver_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert rows(engine) == [("مرحبا", 42)]  # another connection sees it: committed


def test_the_statement_is_prepared_again_when_the_server_forgot_it(
    engine: Engine, pooled: PoolProxiedConnection
) -> None:
    run_alone(pooled, ADD, {"word": "one", "n": "1"})
    pooled.driver_connection.execute("DEALLOCATE ALL")
    pooled.driver_connection.commit()
    run_alone(pooled, ADD, {"word": "two", "n": "2"})
    names = pooled.driver_connection.execute("SELECT name FROM pg_prepared_statements")
    assert ("test_lone_add",) in names.fetchall()
    assert sorted(rows(engine)) == [("one", 2), ("two", 4)]


def test_a_refused_statement_raises_psycopgs_error_and_leaves_the_connection_usable(
    engine: Engine, pooled: PoolProxiedConnection
) -> None:
    run_alone(pooled, ADD, {"word": "same", "n": "1"})
    with pytest.raises(psycopg.errors.UniqueViolation):
        run_alone(pooled, ADD, {"word": "same", "n": "2"})
    assert run_alone(pooled, ADD, {"word": "next", "n": "3"}) == [("next", "6", None)]
    assert sorted(rows(engine)) == [("next", 6), ("same", 2)]


def test_inside_a_transaction_it_is_refused_rather_than_joined(
    engine: Engine, pooled: PoolProxiedConnection
) -> None:
    pooled.driver_connection.execute("SELECT 1")  # opens a transaction
    with pytest.raises(psycopg.ProgrammingError, match="inside a transaction"):
        run_alone(pooled, ADD, {"word": "joined", "n": "1"})
    pooled.driver_connection.rollback()
    assert rows(engine) == []


def test_statements_run_together_commit_together_or_not_at_all(
    engine: Engine, pooled: PoolProxiedConnection
) -> None:
    together = [(ADD, {"word": "a", "n": "1"}), (ADD, {"word": "b", "n": "2"})]
    assert run_together(pooled, together) == [[("a", "2", None)], [("b", "4", None)]]
    assert sorted(rows(engine)) == [("a", 2), ("b", 4)]  # committed at the sync
    refused = [(ADD, {"word": "c", "n": "3"}), (ADD, {"word": "a", "n": "4"})]
    with pytest.raises(psycopg.errors.UniqueViolation):
        run_together(pooled, refused)
    assert sorted(rows(engine)) == [("a", 2), ("b", 4)]  # "c" went with the refused one
    assert pooled.driver_connection.info.transaction_status == psycopg.pq.TransactionStatus.IDLE
    assert run_together(pooled, [(ADD, {"word": "c", "n": "5"})]) == [[("c", "10", None)]]


def test_statements_run_together_are_prepared_again_after_the_server_forgot_them(
    engine: Engine, pooled: PoolProxiedConnection
) -> None:
    run_together(pooled, [(ADD, {"word": "one", "n": "1"})])
    pooled.driver_connection.execute("DEALLOCATE ALL")
    pooled.driver_connection.commit()
    with pytest.raises(psycopg.errors.InvalidSqlStatementName):
        run_together(pooled, [(ADD, {"word": "two", "n": "2"})])
    run_together(pooled, [(ADD, {"word": "two", "n": "2"})])
    assert sorted(rows(engine)) == [("one", 2), ("two", 4)]


def test_statements_are_not_run_together_inside_a_transaction(
    engine: Engine, pooled: PoolProxiedConnection
) -> None:
    pooled.driver_connection.execute("SELECT 1")  # psycopg began a transaction
    with pytest.raises(psycopg.ProgrammingError):
        run_together(pooled, [(ADD, {"word": "inside", "n": "1"})])
    pooled.driver_connection.rollback()
    assert rows(engine) == []
