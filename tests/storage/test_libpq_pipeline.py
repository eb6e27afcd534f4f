"""BEGIN with a transaction's first statement and COMMIT with its last, each one round trip on
the wire (counted from libpq's own trace); values and rows as psycopg has them; errors and a
forgotten statement handled as on any other path; the GIL free while the server works."""

from __future__ import annotations

import re
import tempfile
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import psycopg
import pytest
from flask import Flask
from psycopg import pq
from sqlalchemy import bindparam, column, event, literal_column, select, text
from sqlalchemy import table as table_of
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError, IntegrityError

import storage.db
from bot import create_app
from bot.dev import simulate
from bot.wiring.services import services
from storage.db import make_engine, storage_unavailable
from storage.libpq_pipeline import begin_with, commit_with, select_together
from tests.conftest import MetaWebhook
from tests.storage.helpers import scratch_table

pytestmark = pytest.mark.postgres

ECHO = (
    "SELECT %(word)s::text, %(n)s::int, %(at)s::timestamptz, w"
    " FROM unnest(%(words)s::text[]) AS w ORDER BY w"
)
ADD = "INSERT INTO piped_rows (word) VALUES (%(word)s)"


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    with scratch_table(postgres_url, "piped_rows", "word text UNIQUE") as engine:
        yield engine


@contextmanager
def round_trips_on(engine: Engine) -> Iterator[list[str]]:
    """The protocol messages libpq traces on the connections the block checks out."""
    seen: list[str] = []
    with tempfile.TemporaryDirectory() as folder:
        trace = Path(folder) / "wire.log"
        with trace.open("w") as out:

            def on_checkout(dbapi_connection, _record, _proxy) -> None:  # type: ignore[no-untyped-def]
                dbapi_connection.pgconn.trace(out.fileno())
                dbapi_connection.pgconn.set_trace_flags(pq.Trace.SUPPRESS_TIMESTAMPS)

            def on_checkin(dbapi_connection, _record) -> None:  # type: ignore[no-untyped-def]
                dbapi_connection.pgconn.untrace()

            event.listen(engine, "checkout", on_checkout)
            event.listen(engine, "checkin", on_checkin)
            try:
                yield seen
            finally:
                event.remove(engine, "checkout", on_checkout)
                event.remove(engine, "checkin", on_checkin)
        seen += trace.read_text().splitlines()


def answered(wire: list[str]) -> int:
    """Round trips: the server is ready for the next query once per Query or Sync."""
    return sum(1 for line in wire if "\tReadyForQuery\t" in line)


def words(engine: Engine) -> list[str]:
    with engine.connect() as connection:
        return list(connection.execute(text("SELECT word FROM piped_rows ORDER BY word")).scalars())


def test_begin_with_sends_begin_and_the_statement_in_one_round_trip(engine: Engine) -> None:
    at = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    params = {"word": 'a "quoted", {braced} word', "n": 7, "at": at, "words": ["b,c", "NULL", "a"]}
    with round_trips_on(engine) as wire, engine.connect() as connection:
        rows = begin_with(connection, ECHO, params)
        status = connection.connection.driver_connection.pgconn.transaction_status
        connection.rollback()
    assert status == pq.TransactionStatus.INTRANS  # begun, and left open for what follows
    word = params["word"]
    # Each value as sent; the list an array of texts (none of them NULL); loaded as psycopg does.
    assert rows == [(word, 7, at, "NULL"), (word, 7, at, "a"), (word, 7, at, "b,c")]
    assert rows[0][2].tzinfo is not None
    assert not [line for line in wire if '"BEGIN"' in line and "\tQuery\t" in line]
    assert answered(wire) == 2  # BEGIN with the statement; the rollback


def test_inside_an_open_transaction_begin_with_runs_the_statement_as_any_other(
    engine: Engine,
) -> None:
    with engine.connect() as connection:
        connection.exec_driver_sql("SELECT 1")
        rows = begin_with(connection, ECHO, {"word": "w", "n": 1, "at": None, "words": ["x"]})
        connection.rollback()
    assert rows == [("w", 1, None, "x")]


def test_commit_with_sends_the_statement_and_commit_in_one_round_trip(engine: Engine) -> None:
    with round_trips_on(engine) as wire, engine.connect() as connection:
        begin_with(connection, ECHO, {"word": "w", "n": 1, "at": None, "words": []})
        commit_with(connection, ADD, {"word": "kept"})
        status = connection.connection.driver_connection.pgconn.transaction_status
        connection.commit()  # nothing left for it to commit
    assert status == pq.TransactionStatus.IDLE
    assert words(engine) == ["kept"]  # another connection sees it: committed
    assert not [line for line in wire if '"COMMIT"' in line and "\tQuery\t" in line]
    assert answered(wire) == 2  # BEGIN with the lookup; the insert with COMMIT


def test_commit_with_outside_a_transaction_begins_one_in_the_same_round_trip(
    engine: Engine,
) -> None:
    with round_trips_on(engine) as wire, engine.connect() as connection:
        commit_with(connection, ADD, {"word": "alone"})
        connection.commit()
    assert words(engine) == ["alone"]
    assert answered(wire) == 1


def test_a_refused_statement_commits_nothing_and_leaves_the_connection_usable(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO piped_rows VALUES ('taken')"))
    with engine.connect() as connection:
        begin_with(connection, "SELECT %(n)s::int", {"n": 1})
        connection.exec_driver_sql("INSERT INTO piped_rows VALUES ('earlier')")
        with pytest.raises(IntegrityError) as refused:
            commit_with(connection, ADD, {"word": "taken"})
        assert isinstance(refused.value.orig, psycopg.errors.UniqueViolation)
        assert not refused.value.connection_invalidated
        connection.rollback()
        assert connection.exec_driver_sql("SELECT 1").scalar() == 1
    assert words(engine) == ["taken"]  # the transaction's earlier insert went with it


def test_a_failing_first_statement_is_raised_and_its_transaction_rolled_back(
    engine: Engine,
) -> None:
    with engine.connect() as connection:
        with pytest.raises(Exception) as failed:
            begin_with(connection, "SELECT 1 / %(zero)s::int", {"zero": "0"})
        assert isinstance(failed.value.__cause__, psycopg.errors.DivisionByZero)
        connection.rollback()
        assert begin_with(connection, "SELECT %(n)s::int", {"n": 5}) == [(5,)]
        connection.rollback()


def test_a_statement_the_server_forgot_is_prepared_again(engine: Engine) -> None:
    with engine.connect() as connection:
        assert begin_with(connection, "SELECT %(n)s::int + 1", {"n": 1}) == [(2,)]
        connection.rollback()
        connection.exec_driver_sql("DEALLOCATE ALL")  # seen by the engine: prepared anew
        connection.commit()
        assert begin_with(connection, "SELECT %(n)s::int + 1", {"n": 2}) == [(3,)]
        commit_with(connection, ADD, {"word": "first"})
        connection.commit()
        connection.exec_driver_sql("DEALLOCATE ALL")
        connection.commit()
        commit_with(connection, ADD, {"word": "second"})
        connection.commit()
        driver = connection.connection.driver_connection
        driver.execute("DEALLOCATE ALL")  # behind the engine's back
        driver.commit()
        # The transaction its statement was lost in cannot be saved: raised, then prepared anew.
        with pytest.raises(Exception, match="does not exist"):
            commit_with(connection, ADD, {"word": "lost"})
        connection.rollback()
        commit_with(connection, ADD, {"word": "third"})
        connection.commit()
    assert words(engine) == ["first", "second", "third"]


def test_statements_survive_psycopg_deallocating_its_own_at_a_rollback(engine: Engine) -> None:
    """psycopg, rolling back an open transaction after preparing statements of its own, sends
    DEALLOCATE ALL: a name prepared here is then closed and prepared again, not trusted, even
    in the middle of a transaction, where a missing statement could not be retried."""
    echo = select(literal_column("'echo'")).where(bindparam("n") > 0)
    with engine.connect() as connection:
        commit_with(connection, ADD, {"word": "first"})
        assert select_together(connection, [(echo, {"n": 1})]) == [[("echo",)]]
        for n in range(6):  # psycopg prepares a statement it has run five times
            connection.exec_driver_sql("SELECT %(n)s::int + 2", {"n": n})
        connection.rollback()  # psycopg: ROLLBACK, then DEALLOCATE ALL
        connection.exec_driver_sql("SELECT 1")
        assert select_together(connection, [(echo, {"n": 2})]) == [[("echo",)]]
        commit_with(connection, ADD, {"word": "second"})
        connection.commit()
        # Doubted at a rollback though the server still holds them: closed, then prepared.
        connection.exec_driver_sql("SELECT 1")
        connection.rollback()
        connection.exec_driver_sql("SELECT 1")
        assert select_together(connection, [(echo, {"n": 3})]) == [[("echo",)]]
        commit_with(connection, ADD, {"word": "third"})
        connection.commit()
    assert words(engine) == ["first", "second", "third"]


def test_listeners_of_the_engine_hear_the_statements(engine: Engine) -> None:
    heard: list[tuple[str, str]] = []

    def before(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        heard.append(("before", statement))

    def after(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        heard.append(("after", statement))

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "after_cursor_execute", after)
    try:
        with engine.connect() as connection:
            commit_with(connection, ADD, {"word": "heard"})
            connection.commit()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "after_cursor_execute", after)
    assert heard == [("before", ADD), ("after", ADD)]


def test_other_threads_run_while_the_server_works(engine: Engine) -> None:
    spins = 0
    stop = threading.Event()

    def spin() -> None:
        nonlocal spins
        while not stop.is_set():
            spins += 1

    spinner = threading.Thread(target=spin)
    with engine.connect() as connection:
        spinner.start()
        try:
            begin_with(connection, "SELECT pg_sleep(%(s)s::float)", {"s": "0.3"})
        finally:
            stop.set()
            spinner.join()
        connection.rollback()
    # Held through the wait, the GIL would let the spinner through a handful of times at most.
    assert spins > 10_000, spins


@pytest.fixture
def pg_app(app_config: dict[str, str], postgres_url: str) -> Iterator[Flask]:
    app = create_app({**app_config, "DATABASE_URL": postgres_url})
    yield app
    services(app).engine.dispose()


def test_a_new_customers_first_message_is_two_round_trips(pg_app: Flask) -> None:
    meta = MetaWebhook(pg_app.test_client())
    engine = services(pg_app).engine
    meta.post(simulate.text_body(wa_id="447700900101", text="hello"))  # connections warmed
    with round_trips_on(engine) as wire:
        answer = meta.post(simulate.text_body(wa_id="447700900102", text="hello"))
    assert answer.status_code == 200 and answer.get_json()["messages"] == 1
    # Who they are (BEGIN with it); their contact, message, state and reply (COMMIT with it).
    assert answered(wire) == 2, "\n".join(wire)
    sent = [line for line in wire if line.startswith("F")]
    assert len([line for line in sent if re.search(r"\tSync\b", line)]) == 2
    assert not [line for line in sent if "\tQuery\t" in line]


def test_a_returning_customers_reply_and_new_state_go_with_the_commit(pg_app: Flask) -> None:
    meta = MetaWebhook(pg_app.test_client())
    engine = services(pg_app).engine
    meta.post(simulate.text_body(wa_id="447700900103", text="hello"))
    with round_trips_on(engine) as wire:
        answer = meta.post(simulate.text_body(wa_id="447700900103", text="what is this?"))
    assert answer.status_code == 200 and answer.get_json()["messages"] == 1
    sent = [line for line in wire if line.startswith("F")]
    # The dialogue row's new state is held with the reply, not flushed by the ORM on its own.
    assert not [line for line in sent if re.search(r"\tParse\t.*\"UPDATE dialogue SET", line)]
    assert not [line for line in sent if "\tQuery\t" in line]  # no COMMIT of its own
    # Who they are (BEGIN with it); their contact row with their dialogue state, consents,
    # what they were last shown and any web opt-in; the message, kept once; the reply and new
    # state (COMMIT with them).
    assert answered(wire) == 4, "\n".join(sent)
    with engine.connect() as connection:
        reprompts = connection.exec_driver_sql(
            "SELECT d.reprompts FROM dialogue d JOIN contact c ON c.id = d.contact_id"
            " WHERE c.wa_id = '447700900103'"
        ).scalar_one()
    assert reprompts == 1


def test_select_together_reads_lists_of_any_length_with_the_querys_own_values(
    engine: Engine,
) -> None:
    with engine.begin() as connection:
        connection.execute(text("INSERT INTO piped_rows VALUES ('a'), ('b'), ('c'), ('d')"))
    table = table_of("piped_rows", column("word"))
    asked = (
        select(table.c.word)
        .where(
            table.c.word.in_(bindparam("words", expanding=True)),
            table.c.word.not_in(["d"]),  # the query's own list, sent as values of its own
            table.c.word != bindparam("but"),
        )
        .order_by(table.c.word)
    )
    with engine.connect() as connection:
        found = select_together(
            connection,
            [
                (asked, {"words": ["a"], "but": "z"}),
                (asked, {"words": ["c", "a", "b", "d"], "but": "b"}),
                (asked, {"words": ["b"], "but": "b"}),
            ],
        )
        connection.rollback()
    assert found == [[("a",)], [("a",), ("c",)], []]


@pytest.mark.parametrize("step", ["begin_with", "select_together", "commit_with"])
def test_a_lost_connection_is_storage_down_and_replaced(
    engine: Engine, postgres_url: str, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    """The server gone mid-request: the error says storage is down (the webhook answers 503 and
    Meta redelivers), the connection is dropped, and the next one works."""
    monkeypatch.setattr(storage.db, "PING_AFTER_IDLE_SECONDS", 3600.0)  # no ping to save it
    with engine.connect() as connection:
        pid = connection.exec_driver_sql("SELECT pg_backend_pid()").scalar_one()
        connection.commit()
        other = make_engine(postgres_url)
        with other.connect() as killer:
            killer.execute(text("SELECT pg_terminate_backend(:pid)"), {"pid": pid})
        other.dispose()
        with pytest.raises(DBAPIError) as lost:
            if step == "begin_with":
                begin_with(connection, "SELECT %(n)s::int", {"n": 1})
            elif step == "select_together":
                select_together(connection, [(select(literal_column("1")), {})])
            else:
                commit_with(connection, ADD, {"word": "lost"})
        assert storage_unavailable(lost.value), lost.value
        assert connection.invalidated
    with engine.connect() as connection:
        assert begin_with(connection, "SELECT %(n)s::int", {"n": 2}) == [(2,)]
        connection.rollback()


def test_a_long_list_is_read_without_a_statement_kept_for_its_length(engine: Engine) -> None:
    """Each length of a list is a text of its own: prepared, the lengths a batch's bodies bring
    would pile up in the session, a plan each. A few values are prepared; more are sent once."""
    table = table_of("piped_rows", column("word"))
    asked = select(table.c.word).where(table.c.word.in_(bindparam("words", expanding=True)))
    with engine.connect() as connection:

        def prepared() -> int:
            count = "SELECT count(*) FROM pg_prepared_statements WHERE name LIKE 'optin_%%'"
            return connection.exec_driver_sql(count).scalar_one()

        before = prepared()
        for n in range(1, 12):
            words = [f"w{i}" for i in range(n)]
            assert select_together(connection, [(asked, {"words": words})]) == [[]]
        assert prepared() - before == 4  # one for each length up to four
        connection.rollback()
