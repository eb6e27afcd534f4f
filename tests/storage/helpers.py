"""What several storage tests set up: a reply queued to a contact, a scratch table, a record of
the statements an engine runs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event, text
from sqlalchemy.engine import Engine
from sqlmodel import Session

from storage.db import make_engine
from storage.outbox import enqueue_message


@contextmanager
def statements_on(engine: Engine, *, with_parameters: bool = False) -> Iterator[list[Any]]:
    """The statements the engine runs meanwhile, each with its parameters if asked."""
    seen: list[Any] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        shown = " ".join(statement.split())
        seen.append((shown, parameters) if with_parameters else shown)

    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def queue_reply(session: Session, contact_id: int, n: int) -> str:
    """Reply number n to the contact, queued; its message id."""
    return enqueue_message(
        session,
        contact_id=contact_id,
        phone_number_id="1065",
        payload={"n": n},
        type="text",
        text=f"reply {n}",
    )


@contextmanager
def scratch_table(postgres_url: str, name: str, columns: str) -> Iterator[Engine]:
    """An engine on a database holding a new table of these columns, dropped afterwards so
    the schema is the models' again for later tests."""
    engine = make_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP TABLE IF EXISTS {name}"))
        connection.execute(text(f"CREATE TABLE {name} ({columns})"))
    try:
        yield engine
    finally:
        with engine.begin() as connection:
            connection.execute(text(f"DROP TABLE {name}"))
        engine.dispose()
