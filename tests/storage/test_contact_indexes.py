"""The indexes of identifiers a contact may lack (user_id, parent_user_id, last_inbound_at) hold
only the contacts that have one (migration 7c41d9e2b6a3): user ids stay unique, lookups by
either id still find their contacts through the index, and a contact known by number alone is
in none of them."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy import insert, select, text
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.exc import IntegrityError

from storage.models import Contact

AT = datetime(2026, 1, 1, tzinfo=UTC)
PARTIAL = ("ix_contact_user_id", "ix_contact_parent_user_id", "ix_contact_last_inbound_at")


def new_contact(engine: Engine, wa_id: str, **identifiers: object) -> int:
    with engine.begin() as connection:
        statement = insert(Contact).values(wa_id=wa_id, created_at=AT, **identifiers)
        return connection.execute(statement.returning(Contact.id)).scalar_one()


def index_predicates(connection: Connection) -> dict[str, str | None]:
    """Each index of contact by name, with its WHERE clause (None for a whole-table index)."""
    if connection.dialect.name == "postgresql":
        rows = connection.execute(
            text(
                "SELECT c.relname, pg_get_expr(i.indpred, i.indrelid) FROM pg_index i"
                " JOIN pg_class c ON c.oid = i.indexrelid"
                " WHERE i.indrelid = 'contact'::regclass"
            )
        )
        return {name: predicate for name, predicate in rows}
    rows = connection.execute(
        text("SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = 'contact'")
    )
    return {
        name: sql.split(" WHERE ", 1)[1].strip() if sql and " WHERE " in sql else None
        for name, sql in rows
    }


def plan(connection: Connection, query: str, **params: object) -> str:
    """The query's plan as text, the table scan made as costly as the planner allows."""
    if connection.dialect.name == "postgresql":
        connection.execute(text("SET LOCAL enable_seqscan = off"))
        rows = connection.execute(text(f"EXPLAIN {query}"), params).scalars()
        return "\n".join(rows)
    rows = connection.execute(text(f"EXPLAIN QUERY PLAN {query}"), params)
    return "\n".join(row[-1] for row in rows)


def test_the_identifier_indexes_leave_out_contacts_without_one(engine):
    with engine.connect() as connection:
        predicates = index_predicates(connection)
    for name in PARTIAL:
        column = name.removeprefix("ix_contact_")
        assert predicates[name] is not None, name
        assert column in predicates[name] and "NOT NULL" in predicates[name].upper()
    assert predicates["ix_contact_wa_id"] is None  # the number stays indexed for every contact


def test_user_ids_stay_unique_and_contacts_without_identifiers_are_many(engine):
    for n in range(3):
        new_contact(engine, f"97150123000{n}")  # no user id, no parent id: never a conflict
    new_contact(engine, "971501230009", user_id="US.1", parent_user_id="US.P")
    new_contact(engine, "971501230008", parent_user_id="US.P")  # a parent id is shared
    with pytest.raises(IntegrityError):
        new_contact(engine, "971501230007", user_id="US.1")
    with engine.connect() as connection:
        by_user = connection.execute(select(Contact.wa_id).where(Contact.user_id == "US.1"))
        assert by_user.scalars().all() == ["971501230009"]
        by_parent = connection.execute(
            select(Contact.wa_id).where(Contact.parent_user_id == "US.P")
        )
        assert sorted(by_parent.scalars()) == ["971501230008", "971501230009"]


@pytest.mark.parametrize("column", ["user_id", "parent_user_id"])
def test_a_lookup_by_identifier_uses_its_partial_index(engine, column):
    """Equality implies the value is present, so the planner may use the partial index."""
    new_contact(engine, "971501230001", **{column: "US.1"})
    with engine.begin() as connection:
        used = plan(connection, f"SELECT id FROM contact WHERE {column} = :value", value="US.1")
    assert f"ix_contact_{column}" in used


def test_contacts_without_identifiers_are_in_no_partial_index(postgres_url):
    """On PostgreSQL: a whole-column btree also holds the NULLs and serves `IS NULL`; these
    cannot, as they hold no entry for a contact without the value."""
    from storage.db import make_engine

    engine = make_engine(postgres_url)
    try:
        for n in range(5):
            new_contact(engine, f"97150123000{n}")
        new_contact(
            engine, "971501230009", user_id="US.1", parent_user_id="US.P", last_inbound_at=AT
        )
        with engine.begin() as connection:
            for name in PARTIAL:
                column = name.removeprefix("ix_contact_")
                present = plan(connection, f"SELECT id FROM contact WHERE {column} IS NOT NULL")
                assert name in present
                missing = plan(connection, f"SELECT id FROM contact WHERE {column} IS NULL")
                assert name not in missing
                assert "Seq Scan" in missing
    finally:
        engine.dispose()
