"""Queueing a row wakes the listening dispatchers at commit, and only then (PostgreSQL)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import psycopg
import pytest
from sqlalchemy.engine import Engine, make_url
from sqlmodel import Session

from storage.models import Contact
from storage.outbox import enqueue_read_receipt
from storage.wakeup import CHANNEL
from tests.storage.helpers import queue_reply

pytestmark = pytest.mark.postgres


@pytest.fixture
def engine(postgres_engines: Callable[[], Engine]) -> Engine:
    return postgres_engines()


@pytest.fixture
def listener(postgres_url: str) -> Iterator[psycopg.Connection]:
    conninfo = make_url(postgres_url).set(drivername="postgresql").render_as_string(False)
    with psycopg.connect(conninfo, autocommit=True) as connection:
        connection.execute(f"LISTEN {CHANNEL}")
        yield connection


def _woken(listener: psycopg.Connection) -> int:
    """The notifications waiting now (the committing transaction has returned: they are in)."""
    return sum(1 for _ in listener.notifies(timeout=0.2))


def _contact(session: Session) -> int:
    contact = Contact(wa_id="15550001111")
    session.add(contact)
    session.flush()
    assert contact.id is not None
    return contact.id


def test_a_committed_outbox_row_wakes_listeners_once_per_transaction(
    engine: Engine, listener: psycopg.Connection
) -> None:
    with Session(engine) as session:
        contact_id = _contact(session)
        for n in range(3):
            queue_reply(session, contact_id, n)
        enqueue_read_receipt(session, phone_number_id="1065", wamid="wamid.IN")
        session.flush()  # the rows are in, the transaction is open: nothing is delivered yet
        assert _woken(listener) == 0
        session.commit()
    # One INSERT statement per table flush, PostgreSQL folds equal notifications: at least one.
    assert _woken(listener) >= 1


def test_a_rolled_back_outbox_row_wakes_nobody(
    engine: Engine, listener: psycopg.Connection
) -> None:
    with Session(engine) as session:
        contact_id = _contact(session)
        queue_reply(session, contact_id, 1)  # never sent
        session.flush()
        session.rollback()
    assert _woken(listener) == 0
