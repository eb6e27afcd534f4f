"""The ledger and the current consent name their contact by id, checked by triggers once per
statement rather than by a foreign key row by row (migration 7c41d9e2b6a3): a row naming no
contact is refused, deleting a contact removes its rows, and a contact being referenced cannot
be deleted by another transaction until the referencing one ends. The indexes of identifiers a
contact may lack hold only the contacts that have them, and still keep user ids unique."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import psycopg
import pytest
from sqlalchemy import func, insert, select, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session

from storage.db import make_engine
from storage.models import Consent, ConsentEvent, Contact

AT = datetime(2026, 1, 1, tzinfo=UTC)


def ledger_row(contact_id: int, category: str = "orders") -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "category": category,
        "granted": True,
        "source": "paper",
        "occurred_at": AT,
        "recorded_at": AT,
        "text_version": "v1",
        "text": "Yes",
        "evidence": {"line": 2},
    }


def state_row(contact_id: int, category: str = "orders") -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "category": category,
        "granted": True,
        "source": "paper",
        "updated_at": AT,
        "granted_at": AT,
        "confirmed": True,
    }


def new_contact(engine: Engine, wa_id: str, **identifiers: str) -> int:
    with engine.begin() as connection:
        statement = insert(Contact).values(wa_id=wa_id, created_at=AT, **identifiers)
        return connection.execute(statement.returning(Contact.id)).scalar_one()


def count(engine: Engine, model: Any) -> int:
    with Session(engine) as session:
        return session.execute(select(func.count()).select_from(model)).scalar_one()


@pytest.mark.parametrize("model,row", [(ConsentEvent, ledger_row), (Consent, state_row)])
def test_a_row_naming_no_contact_is_refused_and_nothing_of_its_statement_stays(engine, model, row):
    known = new_contact(engine, "971501230001")
    with pytest.raises(IntegrityError), engine.begin() as connection:
        # One statement: the row of the known contact goes with the one naming nobody.
        connection.execute(insert(model), [row(known), row(known + 1000)])
    assert count(engine, model) == 0
    with engine.begin() as connection:
        connection.execute(insert(model), [row(known)])
    assert count(engine, model) == 1


@pytest.mark.parametrize("model,row", [(ConsentEvent, ledger_row), (Consent, state_row)])
def test_a_row_moved_to_no_contact_is_refused_and_to_a_contact_is_kept(engine, model, row):
    first = new_contact(engine, "971501230001")
    second = new_contact(engine, "971501230002")
    with engine.begin() as connection:
        connection.execute(insert(model), [row(first)])
    with pytest.raises(IntegrityError), engine.begin() as connection:
        connection.execute(update(model).values(contact_id=second + 1000))
    with engine.begin() as connection:
        connection.execute(update(model).values(contact_id=second))
        ids = connection.execute(select(model.contact_id)).scalars().all()
    assert ids == [second]


def test_deleting_a_contact_removes_its_ledger_and_consent_and_only_theirs(engine):
    gone = new_contact(engine, "971501230001")
    kept = new_contact(engine, "971501230002")
    with engine.begin() as connection:
        for contact_id in (gone, kept):
            connection.execute(insert(ConsentEvent), [ledger_row(contact_id)])
            connection.execute(insert(Consent), [state_row(contact_id)])
        connection.execute(Contact.__table__.delete().where(Contact.id == gone))
        left = {
            model.__tablename__: connection.execute(select(model.contact_id)).scalars().all()
            for model in (ConsentEvent, Consent)
        }
    assert left == {"consent_event": [kept], "consent": [kept]}


def test_a_referenced_contact_keeps_its_id(engine):
    contact_id = new_contact(engine, "971501230001")
    with engine.begin() as connection:
        connection.execute(insert(ConsentEvent), [ledger_row(contact_id)])
    with pytest.raises(IntegrityError), engine.begin() as connection:
        statement = update(Contact).where(Contact.id == contact_id).values(id=contact_id + 7)
        connection.execute(statement)


def test_user_ids_stay_unique_and_contacts_without_identifiers_are_many(engine):
    for n in range(3):
        new_contact(engine, f"97150123000{n}")  # no user id, no parent id: never a conflict
    new_contact(engine, "971501230009", user_id="US.1", parent_user_id="US.P")
    new_contact(engine, "971501230008", parent_user_id="US.P")  # a parent id is shared
    with pytest.raises(IntegrityError):
        new_contact(engine, "971501230007", user_id="US.1")
    with Session(engine) as session:
        found = session.execute(select(Contact.wa_id).where(Contact.parent_user_id == "US.P"))
        assert sorted(found.scalars()) == ["971501230008", "971501230009"]


def _plain(url: str) -> str:
    return make_engine(url).url.set(drivername="postgresql").render_as_string(False)


def test_c18_a_contact_referenced_by_an_open_transaction_cannot_be_deleted_meanwhile(
    postgres_url,
):
    """As a foreign key locks it: the insert locks the contact it did not hold, so an erasure
    waits for it; a contact the transaction created needs no lock and is checked all the same."""
    engine = make_engine(postgres_url)
    try:
        contact_id = new_contact(engine, "971501230001")
        with psycopg.connect(_plain(postgres_url)) as writer:
            writer.execute(
                "INSERT INTO consent_event (contact_id, category, granted, source, occurred_at,"
                " recorded_at, text_version, text) VALUES (%s, 'orders', true, 'paper', now(),"
                " now(), 'v1', 'Yes')",
                (contact_id,),
            )
            with psycopg.connect(_plain(postgres_url)) as eraser:
                eraser.execute("SET lock_timeout = '200ms'")
                with pytest.raises(psycopg.errors.LockNotAvailable):
                    eraser.execute("DELETE FROM contact WHERE id = %s", (contact_id,))
                eraser.rollback()
                writer.commit()
                eraser.execute("DELETE FROM contact WHERE id = %s", (contact_id,))
                eraser.commit()
        assert count(engine, ConsentEvent) == 0  # the committed row went with its contact
        with psycopg.connect(_plain(postgres_url)) as writer:
            created = writer.execute(
                "INSERT INTO contact (wa_id, created_at) VALUES ('971501230002', now())"
                " RETURNING id"
            ).fetchone()
            assert created is not None
            writer.execute(
                "INSERT INTO consent (contact_id, category, granted, source, updated_at)"
                " VALUES (%s, 'orders', true, 'paper', now())",
                (created[0],),
            )
            with pytest.raises(psycopg.errors.ForeignKeyViolation):
                writer.execute(
                    "INSERT INTO consent (contact_id, category, granted, source, updated_at)"
                    " VALUES (%s, 'orders', true, 'paper', now())",
                    (created[0] + 1000,),
                )
    finally:
        engine.dispose()
