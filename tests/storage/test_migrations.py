"""The schema comes from Alembic, and the migrations agree with the models."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import MetaData, inspect, text
from sqlmodel import Session, SQLModel, select

import storage.models  # noqa: F401
from storage import migrate
from storage.db import make_engine
from storage.models import Consent, ConsentEvent, Contact, DialogueRow, IdentityChange, Message
from tests.bench import schema_url
from tests.services import postgres_url_or_skip


def test_migrations_match_the_models(database_url):
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            context = MigrationContext.configure(connection, opts={"compare_type": True})
            differences = compare_metadata(context, SQLModel.metadata)
    finally:
        engine.dispose()
    assert differences == []


def test_database_is_at_the_newest_revision(database_url):
    engine = make_engine(database_url)
    try:
        assert migrate.current_revision(engine) == migrate.head_revision(database_url)
    finally:
        engine.dispose()


def test_upgrade_creates_schema_on_an_empty_sqlite_database_and_downgrade_removes_it(tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    migrate.upgrade(url)
    engine = make_engine(url)
    from sqlalchemy import inspect

    assert "consent_event" in inspect(engine).get_table_names()
    migrate.downgrade(url, "base")
    assert "consent_event" not in inspect(engine).get_table_names()
    migrate.upgrade(url)
    assert migrate.current_revision(engine) == migrate.head_revision(url)
    engine.dispose()


def test_flask_db_upgrade_command(app_config, tmp_path):
    from bot import create_app

    app_config["DATABASE_URL"] = f"sqlite:///{tmp_path / 'cli.db'}"
    app = create_app(app_config)
    result = app.test_cli_runner().invoke(args=["db", "upgrade"])
    assert result.exit_code == 0, result.output
    assert migrate.head_revision(app_config["DATABASE_URL"]) in result.output


# --- b4f201d6d5cb: identity is the person (C27) -------------------------------------------------

BEFORE_IDENTITY = "e2f6c8d14a3b"
NUMBER = "16505551234"
USER_ID = "US.1410018717833190"
T1, T2, T3 = (datetime(2026, 1, day, 12, tzinfo=UTC) for day in (1, 2, 3))


@pytest.fixture(params=["sqlite", "postgres"])
def empty_database(request: pytest.FixtureRequest, tmp_path) -> Iterator[str]:
    """An empty database of either kind; PostgreSQL in its own schema, away from the suite's."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'upgrade.db'}"
        return
    url = postgres_url_or_skip()
    schema = "migration_test"
    engine = make_engine(url)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
        connection.execute(text(f"CREATE SCHEMA {schema}"))
    yield schema_url(url, schema)
    with engine.begin() as connection:
        connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
    engine.dispose()


def _seed_before_identity(url: str) -> None:
    """Contacts as the previous schema kept them: one person split in two, and two others."""
    engine = make_engine(url)
    tables = MetaData()
    tables.reflect(engine)
    contact, message = tables.tables["contact"], tables.tables["message"]
    ledger, consent, dialogue = (tables.tables[t] for t in ("consent_event", "consent", "dialogue"))

    def person(id_: int, wa_id: str | None, user_id: str | None, **extra: object) -> dict:
        blank = dict.fromkeys(("name", "username", "language", "last_inbound_at"))
        return blank | {"id": id_, "wa_id": wa_id, "user_id": user_id, "created_at": T1, **extra}

    def decision(contact_id: int, category: str, granted: bool, at: datetime) -> dict:
        return {
            "contact_id": contact_id,
            "category": category,
            "granted": granted,
            "source": "whatsapp",
            "occurred_at": at,
            "recorded_at": at,
            "text_version": "v1",
            "text": f"{category} prompt",
            "evidence": {"reply_wamid": f"wamid.{contact_id}{category}"},
        }

    def inbound(id_: str, contact_id: int, raw: dict, at: datetime) -> dict:
        return {
            "id": id_,
            "contact_id": contact_id,
            "direction": "in",
            "wamid": f"wamid.{id_}",
            "type": "text",
            "status": "received",
            "meta_timestamp": at,
            "created_at": at,
            "raw": raw,
        }

    with engine.begin() as connection:
        connection.execute(
            contact.insert(),
            [
                # Wrote with the number first; later with both ids, which could not be linked.
                person(1, NUMBER, None, name="Sheena", last_inbound_at=T3),
                # Wrote by username only in between, and opted in to alerts there.
                person(2, None, USER_ID, username="sheena.n", last_inbound_at=T2, language="ar"),
                person(3, "447700900123", None, name="Other"),
                person(4, None, "US.99887766", username="alone"),
            ],
        )
        connection.execute(
            message.insert(),
            [
                inbound("m1", 1, {"from": NUMBER, "text": {"body": "hi"}}, T1),
                inbound("m2", 2, {"from_user_id": USER_ID, "text": {"body": "yes"}}, T2),
                inbound("m3", 1, {"from": NUMBER, "from_user_id": USER_ID, "type": "text"}, T3),
                inbound("m4", 3, {"from": "447700900123", "from_user_id": "US.5"}, T1),
            ],
        )
        rows = [
            decision(1, "orders", True, T1),
            decision(1, "offers", True, T1),
            decision(2, "offers", True, T2),
            decision(2, "alerts", True, T2),
            decision(1, "offers", False, T3),  # the newest word on offers
            decision(3, "orders", True, T1),
            decision(4, "orders", True, T2),
        ]
        connection.execute(ledger.insert(), rows)
        current: dict[tuple[int, str], dict] = {}
        for row in rows:
            current[(row["contact_id"], row["category"])] = {
                "contact_id": row["contact_id"],
                "category": row["category"],
                "granted": row["granted"],
                "source": row["source"],
                "updated_at": row["occurred_at"],
                "granted_at": T1,
            }
        connection.execute(consent.insert(), list(current.values()))
        connection.execute(
            dialogue.insert(),
            [
                {"contact_id": 1, "stage": "subscribed", "reprompts": 0, "updated_at": T3},
                {"contact_id": 2, "stage": "asked", "reprompts": 1, "updated_at": T2},
            ],
        )
    engine.dispose()


def test_c27_upgrade_joins_a_split_person_and_keeps_every_consent(empty_database):
    migrate.upgrade(empty_database, BEFORE_IDENTITY)
    _seed_before_identity(empty_database)

    migrate.upgrade(empty_database)

    engine = make_engine(empty_database)
    try:
        with Session(engine) as session:
            contacts = {c.id: c for c in session.exec(select(Contact))}
            assert set(contacts) == {1, 3, 4}  # the username-only half joined its number
            sheena = contacts[1]
            assert (sheena.wa_id, sheena.user_id, sheena.username) == (NUMBER, USER_ID, "sheena.n")
            assert (sheena.name, sheena.language, sheena.parent_user_id) == ("Sheena", "ar", None)
            assert sheena.last_inbound_at == T3
            assert (contacts[3].user_id, contacts[4].user_id) == (None, "US.99887766")

            # Every ledger row survives; the joined person's rows are all theirs now.
            ledger = session.exec(select(ConsentEvent)).all()
            assert len(ledger) == 7
            assert sorted(e.contact_id for e in ledger) == [1, 1, 1, 1, 1, 3, 4]
            consents = {
                (c.contact_id, c.category): c.granted for c in session.exec(select(Consent))
            }
            assert consents == {
                (1, "orders"): True,
                (1, "offers"): False,  # the newer withdrawal stays in force
                (1, "alerts"): True,  # given while known by username only: not lost
                (3, "orders"): True,
                (4, "orders"): True,
            }
            assert sorted(m.contact_id for m in session.exec(select(Message))) == [1, 1, 1, 3]
            assert session.get(DialogueRow, 1).stage == "subscribed"  # the newer dialogue
            assert session.get(DialogueRow, 2) is None
            (change,) = session.exec(select(IdentityChange)).all()
            assert (change.contact_id, change.field, change.current, change.reason) == (
                1,
                "user_id",
                USER_ID,
                "merged",
            )
            assert change.occurred_at == T3  # the message that proved it
    finally:
        engine.dispose()

    # And back: the previous schema keeps the joined person and every consent.
    migrate.downgrade(empty_database, BEFORE_IDENTITY)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM consent_event")).scalar() == 7
            assert connection.execute(text("SELECT count(*) FROM consent")).scalar() == 5
            assert "identity_change" not in inspect(connection).get_table_names()
    finally:
        engine.dispose()
    migrate.upgrade(empty_database)


# --- 7c41d9e2b6a3: indexes of identifiers a contact may lack leave out NULLs ------------------

BEFORE_PARTIAL = "a6d2f0c9e7b1"


def _plan(url: str, query: str) -> str:
    """The plan of a query, a table scan made as costly as the planner allows."""
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            if connection.dialect.name == "postgresql":
                connection.execute(text("SET LOCAL enable_seqscan = off"))
                return "\n".join(connection.execute(text(f"EXPLAIN {query}")).scalars())
            rows = connection.execute(text(f"EXPLAIN QUERY PLAN {query}"))
            return "\n".join(row[-1] for row in rows)
    finally:
        engine.dispose()


def _null_lookup_plan(url: str) -> str:
    """The plan of a search for contacts without a user id."""
    return _plan(url, "SELECT id FROM contact WHERE user_id IS NULL")


def _add_contact(url: str, wa_id: str, user_id: str | None) -> None:
    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text("INSERT INTO contact (wa_id, user_id, created_at) VALUES (:w, :u, :at)"),
                {"w": wa_id, "u": user_id, "at": T1},
            )
    finally:
        engine.dispose()


def test_identifier_indexes_leave_out_nulls_and_come_back_whole(empty_database):
    """Whole before (a NULL search uses the index), partial after (it cannot), whole again after
    a downgrade; user ids unique throughout, contacts kept."""
    from sqlalchemy.exc import IntegrityError

    migrate.upgrade(empty_database, BEFORE_PARTIAL)
    _add_contact(empty_database, "971501230001", None)
    _add_contact(empty_database, "971501230002", USER_ID)
    assert "ix_contact_user_id" in _null_lookup_plan(empty_database)

    migrate.upgrade(empty_database)
    assert "ix_contact_user_id" not in _null_lookup_plan(empty_database)
    _add_contact(empty_database, "971501230003", None)
    with pytest.raises(IntegrityError):
        _add_contact(empty_database, "971501230004", USER_ID)

    migrate.downgrade(empty_database, BEFORE_PARTIAL)
    assert "ix_contact_user_id" in _null_lookup_plan(empty_database)
    with pytest.raises(IntegrityError):
        _add_contact(empty_database, "971501230004", USER_ID)
    engine = make_engine(empty_database)
    try:
        with engine.connect() as connection:
            assert connection.execute(text("SELECT count(*) FROM contact")).scalar() == 3
    finally:
        engine.dispose()
    migrate.upgrade(empty_database)


BEFORE_LEAN_MESSAGE_INDEXES = "c5e9a7d3b2f4"


def _message_plan(url: str, where: str) -> str:
    """The plan of a search of the message log."""
    return _plan(url, f"SELECT id FROM message WHERE {where}")


def _message_indexes(url: str) -> set[str]:
    engine = make_engine(url)
    try:
        return {index["name"] for index in inspect(engine).get_indexes("message")}
    finally:
        engine.dispose()


def test_message_indexes_hold_only_what_lookups_need_and_come_back_whole(empty_database):
    """A contact's messages are found by the (contact, time) index, with or without the index of
    contact_id that the upgrade drops; the index of edited messages serves a lookup of an edit
    but, after it, not of the rest. A downgrade brings both back whole."""
    by_contact = "contact_id = 1"
    edits_of = "original_wamid = 'wamid.original'"
    not_edits = "original_wamid IS NULL"
    migrate.upgrade(empty_database, BEFORE_LEAN_MESSAGE_INDEXES)
    assert "ix_message_contact_id" in _message_indexes(empty_database)
    assert "ix_message_original_wamid" in _message_plan(empty_database, not_edits)

    migrate.upgrade(empty_database)
    assert "ix_message_contact_id" not in _message_indexes(empty_database)
    assert "ix_message_contact_time" in _message_plan(empty_database, by_contact)
    assert "ix_message_original_wamid" in _message_plan(empty_database, edits_of)
    assert "ix_message_original_wamid" not in _message_plan(empty_database, not_edits)

    migrate.downgrade(empty_database, BEFORE_LEAN_MESSAGE_INDEXES)
    assert "ix_message_contact_id" in _message_indexes(empty_database)
    assert "ix_message_original_wamid" in _message_plan(empty_database, not_edits)
    migrate.upgrade(empty_database)


def _message_fillfactor(url: str) -> str | None:
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            options = connection.execute(
                text("SELECT reloptions FROM pg_class WHERE oid = 'message'::regclass")
            ).scalar()
    finally:
        engine.dispose()
    return next((o.split("=")[1] for o in options or () if o.startswith("fillfactor=")), None)


BEFORE_ROOMIER_MESSAGE_PAGES = "d8a4c1e6f2b9"


@pytest.mark.parametrize("empty_database", ["postgres"], indirect=True)  # SQLite has none
def test_message_pages_keep_room_for_a_batch_of_status_changes(empty_database):
    """PostgreSQL leaves 30 % of each page of the message log free (15 % before), as the model
    declares; a downgrade restores the 15 %."""
    migrate.upgrade(empty_database)
    declared = Message.__table__.dialect_options["postgresql"]["with"]  # type: ignore[attr-defined]
    assert _message_fillfactor(empty_database) == str(declared["fillfactor"]) == "70"
    migrate.downgrade(empty_database, BEFORE_ROOMIER_MESSAGE_PAGES)
    assert _message_fillfactor(empty_database) == "85"
    migrate.upgrade(empty_database)
