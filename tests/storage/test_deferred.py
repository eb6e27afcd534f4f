"""Rows written with SQL rather than through the session: at once outside a deferring block;
inside one, held until the next flush and inserted a table at a time, or dropped with an error."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, text
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from bot.dev import simulate
from bot.dev.simulate_kinds import group_text_body
from storage.contacts import lock_contact
from storage.db import is_postgres, make_engine, session_scope
from storage.deferred import deferred_transaction, deferring, flush, insert_row, update_row
from storage.models import Contact, DialogueRow, Message, OutboxItem
from storage.outbox import enqueue_read_receipt
from tests.bench.bench_intake import seed_customers
from tests.conftest import MetaWebhook
from tests.storage.helpers import queue_reply, statements_on

_INSERTED = re.compile(r'INSERT INTO "?(\w+)"? ')


def _rows(session: Session) -> tuple[int, int]:
    messages = session.exec(select(func.count()).select_from(Message)).one()
    outbox = session.exec(select(func.count()).select_from(OutboxItem)).one()
    return messages, outbox


def test_outside_a_deferring_block_a_queued_reply_is_in_the_tables_at_once(
    engine: Engine,
) -> None:
    with session_scope(engine) as session, session.no_autoflush:
        contact = lock_contact(session, wa_id="447700900501", user_id=None)
        message_id = queue_reply(session, contact.id, 1)  # type: ignore[arg-type]
        assert _rows(session) == (1, 1)
        queued = session.exec(select(Message).where(Message.id == message_id)).one()
        assert (queued.status, queued.direction, queued.text) == ("queued", "out", "reply 1")


def test_held_rows_go_in_at_the_flush_one_insert_per_table_parents_first(
    engine: Engine,
) -> None:
    with session_scope(engine) as session, session.no_autoflush:
        contact = lock_contact(session, wa_id="447700900502", user_id=None)
        with deferring(session):
            ids = [queue_reply(session, contact.id, n) for n in range(5)]  # type: ignore[arg-type]
            enqueue_read_receipt(session, phone_number_id="1065", wamid="wamid.IN502")
            assert _rows(session) == (0, 0)  # held: nothing written yet
            with statements_on(engine) as seen:
                flush(session)
            # Parents first; on PostgreSQL in one statement, elsewhere one INSERT per table.
            assert [table for s in seen for table in _INSERTED.findall(s)] == [
                "message",
                "outbox",
            ], seen
            assert len(seen) == (1 if is_postgres(engine) else 2), seen
            assert _rows(session) == (5, 6)
            queued = session.exec(select(OutboxItem.message_id).where(OutboxItem.kind == "message"))
            assert sorted(queued) == sorted(ids)


def test_rows_held_at_the_end_of_a_block_are_written_and_kept(engine: Engine) -> None:
    with session_scope(engine) as session, session.no_autoflush:
        contact = lock_contact(session, wa_id="447700900503", user_id=None)
        with deferring(session):
            queue_reply(session, contact.id, 1)  # type: ignore[arg-type]
        assert _rows(session) == (1, 1)
    with Session(engine) as session:
        assert _rows(session) == (1, 1)


def test_an_error_in_the_block_writes_nothing_and_ends_the_holding(engine: Engine) -> None:
    with session_scope(engine) as session, session.no_autoflush:
        contact = lock_contact(session, wa_id="447700900504", user_id=None)
        with pytest.raises(RuntimeError), deferring(session):
            queue_reply(session, contact.id, 1)  # type: ignore[arg-type]
            raise RuntimeError("refused")
        assert _rows(session) == (0, 0)
        queue_reply(session, contact.id, 2)  # type: ignore[arg-type]
        assert _rows(session) == (1, 1)  # no longer held


def test_a_held_change_to_a_row_is_made_at_the_flush_the_last_change_winning(
    engine: Engine,
) -> None:
    with session_scope(engine) as session, session.no_autoflush:
        contact = lock_contact(session, wa_id="447700900507", user_id=None)
        table = Contact.__table__  # type: ignore[attr-defined]
        with deferring(session):
            update_row(session, table, contact.id, {"language": "en"})
            update_row(session, table, contact.id, {"language": "ar"})
            queue_reply(session, contact.id, 1)  # type: ignore[arg-type]
            assert _language(session, contact.id) is None  # held
            with statements_on(engine) as seen:
                flush(session)
            assert len(seen) == (1 if is_postgres(engine) else 3), seen
            assert _language(session, contact.id) == "ar"
            assert _rows(session) == (1, 1)
        update_row(session, table, contact.id, {"language": "en"})
        assert _language(session, contact.id) == "en"  # no longer held: at once


def test_held_changes_to_different_columns_each_keep_their_own(engine: Engine) -> None:
    with session_scope(engine) as session, session.no_autoflush:
        first = lock_contact(session, wa_id="447700900508", user_id=None)
        second = lock_contact(session, wa_id="447700900509", user_id=None)
        table = Contact.__table__  # type: ignore[attr-defined]
        with deferring(session):
            update_row(session, table, first.id, {"language": "ar"})
            update_row(session, table, second.id, {"name": "Second"})
        rows = session.exec(
            select(Contact.wa_id, Contact.language, Contact.name).order_by(Contact.wa_id)
        ).all()
        assert [tuple(r) for r in rows] == [
            ("447700900508", "ar", first.name),
            ("447700900509", second.language, "Second"),
        ]


def _language(session: Session, contact_id: int | None) -> str | None:
    return session.exec(select(Contact.language).where(Contact.id == contact_id)).one()


def test_a_new_customer_is_written_with_their_first_message_time_not_updated_after(
    meta: MetaWebhook, engine: Engine
) -> None:
    written = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    body = simulate.text_body(wa_id="447700900505", text="hello", timestamp=written)
    with statements_on(engine) as seen:
        assert meta.post(body).status_code == 200
    assert not [s for s in seen if s.startswith("UPDATE contact") and "inbound_at" in s], seen
    if is_postgres(engine):  # who they are, then the contact, the message and the rest together
        assert len(seen) == 2, seen
        assert re.search(r'INSERT INTO "?contact"? .*INSERT INTO "?message"? ', seen[1], re.S), seen
    with Session(engine) as session:
        contact = session.exec(select(Contact).where(Contact.wa_id == "447700900505")).one()
        assert (contact.first_inbound_at, contact.last_inbound_at) == (written, written)


def test_c31_a_stranger_first_seen_in_a_group_has_no_private_message_on_record(
    meta: MetaWebhook, engine: Engine
) -> None:
    body = group_text_body(wa_id="447700900506", text="hello all", group_id="120363000000000506")
    assert meta.post(body).status_code == 200
    with Session(engine) as session:
        contact = session.exec(select(Contact).where(Contact.wa_id == "447700900506")).one()
        assert (contact.first_inbound_at, contact.last_inbound_at) == (None, None)


def test_a_new_customer_written_with_the_body_changes_like_any_contact_after(
    meta: MetaWebhook, engine: Engine
) -> None:
    """The contact held for the body's write is an ordinary contact once written: a second
    message of the body, with the profile renamed, renames it."""
    first = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    body = simulate.batch_body(
        simulate.text_body(wa_id="447700900507", text="hello", name="Ann", timestamp=first),
        simulate.text_body(
            wa_id="447700900507", text="hi", name="Ann B.", timestamp=first + timedelta(seconds=5)
        ),
    )
    assert meta.post(body).get_json()["messages"] == 2
    with Session(engine) as session:
        contact = session.exec(select(Contact).where(Contact.wa_id == "447700900507")).one()
        assert contact.name == "Ann B."
        assert (contact.first_inbound_at, contact.last_inbound_at) == (
            first,
            first + timedelta(seconds=5),
        )
        inbound = select(Message).where(Message.contact_id == contact.id, Message.direction == "in")
        assert len(session.exec(inbound).all()) == 2


def test_a_held_row_leaving_out_a_column_with_a_default_gets_the_default(
    engine: Engine,
) -> None:
    """A held row is written as it is given; one that leaves out a column SQLAlchemy fills in
    Python (the outbox row's created_at, priority, attempts) is filled as any insert is."""
    table = OutboxItem.__table__  # type: ignore[attr-defined]
    due = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    receipt = {"message_id": "wamid.IN510"}
    with session_scope(engine) as session, session.no_autoflush, deferring(session):
        row = {"phone_number_id": "1065", "kind": "read_receipt", "payload": receipt}
        insert_row(session, table, {**row, "due_at": due})
    with Session(engine) as session:
        added = session.exec(select(OutboxItem).where(OutboxItem.kind == "read_receipt")).one()
        assert (added.due_at, added.attempts, added.payload) == (due, 0, receipt)
        assert added.created_at is not None and added.priority is not None


def test_a_held_change_finds_its_row_by_the_tables_own_key(engine: Engine) -> None:
    """The dialogue row's key is its contact: a change to it is held, merged into the row's
    held insert when there is one, and written at the flush."""
    table = DialogueRow.__table__  # type: ignore[attr-defined]
    asked = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with session_scope(engine) as session, session.no_autoflush:
        known = lock_contact(session, wa_id="447700900511", user_id=None)
        new = lock_contact(session, wa_id="447700900512", user_id=None)
        row = {"stage": "asked", "reprompts": 0, "language_chosen": False, "updated_at": asked}
        insert_row(session, table, {**row, "contact_id": known.id})
        with deferring(session):
            insert_row(session, table, {**row, "contact_id": new.id, "stage": "new"})
            update_row(session, table, new.id, {"stage": "asked"})
            update_row(session, table, known.id, {"pending": ["offers"], "asked_at": asked})
            update_row(session, table, known.id, {"reprompts": 2})
            assert session.get(DialogueRow, known.id).reprompts == 0  # held
            session.expire_all()
        rows = session.exec(select(DialogueRow).order_by(DialogueRow.contact_id)).all()
        assert [(r.stage, r.pending, r.asked_at, r.reprompts) for r in rows] == [
            ("asked", ["offers"], asked, 2),
            ("asked", None, None, 0),
        ]


def test_a_deferred_transaction_writes_its_rows_with_the_commit(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact_id = lock_contact(session, wa_id="447700900513", user_id=None).id
    with statements_on(engine) as seen, deferred_transaction(engine) as session:
        queue_reply(session, contact_id, 1)  # type: ignore[arg-type]
        update_row(session, Contact.__table__, contact_id, {"language": "ar"})  # type: ignore[attr-defined]
        assert _rows(session) == (0, 0)  # held
    with Session(engine) as session:
        assert _rows(session) == (1, 1)
        assert _language(session, contact_id) == "ar"
    if is_postgres(engine):  # the held rows in one statement, sent with the COMMIT
        assert len(seen) == 3, seen  # the two counts read while held, then the write
        assert "INSERT INTO" in seen[-1] and "UPDATE" in seen[-1], seen


def test_a_deferred_transaction_that_fails_keeps_nothing(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact_id = lock_contact(session, wa_id="447700900514", user_id=None).id
    with pytest.raises(RuntimeError), deferred_transaction(engine) as session:
        queue_reply(session, contact_id, 1)  # type: ignore[arg-type]
        raise RuntimeError("refused")
    with Session(engine) as session:
        assert _rows(session) == (0, 0)


def test_a_returning_customers_dialogue_row_is_found_by_its_key_not_a_scan(
    postgres_url: str,
) -> None:
    """A body's one dialogue change, written with its reply, is looked up by the dialogue's
    key however many customers there are. Read from a document of rows, the planner expected
    a hundred and hashed them against a scan of the whole table: a returning customer's
    message cost a millisecond more for every ten thousand customers."""
    seed_customers(postgres_url, 20_000)
    engine = make_engine(postgres_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("ANALYZE contact, dialogue"))
            contact_id = connection.execute(text("SELECT max(id) FROM contact")).scalar_one()
        table = DialogueRow.__table__  # type: ignore[attr-defined]
        with (
            statements_on(engine, with_parameters=True) as seen,
            deferred_transaction(engine) as session,
        ):
            update_row(session, table, contact_id, {"stage": "asked", "reprompts": 1})
            queue_reply(session, contact_id, 1)
        [(statement, parameters)] = [(s, p) for s, p in seen if s.startswith("WITH")]
        with engine.connect() as connection:
            plan = connection.exec_driver_sql(f"EXPLAIN {statement}", parameters).scalars().all()
            stage = connection.execute(
                text("SELECT stage, reprompts FROM dialogue WHERE contact_id = :id"),
                {"id": contact_id},
            ).one()
        assert stage == ("asked", 1)
        shown = "\n".join(plan)
        assert "Seq Scan on dialogue" not in shown, shown
        assert "dialogue_pkey" in shown, shown
    finally:
        engine.dispose()
