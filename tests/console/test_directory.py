"""The contact list: newest activity first, 50 a page, searched by any part of the number, user
id, name or username."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from flask.testing import FlaskClient
from sqlalchemy import event
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.directory import PER_PAGE, list_contacts
from storage.models import Consent, Contact

START = datetime(2026, 1, 1, tzinfo=UTC)


def add_contacts(engine: Engine, count: int) -> None:
    """Contacts 0..count-1; a higher number wrote more recently."""
    with Session(engine) as session:
        for n in range(count):
            session.add(
                Contact(
                    wa_id=f"1555000{n:04d}",
                    name=f"Customer {n:04d}",
                    language="en",
                    created_at=START,
                    last_inbound_at=START + timedelta(minutes=n),
                )
            )
        session.commit()


@pytest.fixture
def statements(engine: Engine) -> Iterator[list[str]]:
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        if not statement.startswith("BEGIN"):  # SQLite's write lock, taken at BEGIN
            seen.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    yield seen
    event.remove(engine, "before_cursor_execute", record)


def test_pages_of_fifty_newest_inbound_first_with_contacts_never_heard_from_last(
    engine: Engine,
) -> None:
    add_contacts(engine, 120)
    with Session(engine) as session:
        session.add(Contact(wa_id="15559999999", name="Imported", created_at=START))
        session.commit()
        first = list_contacts(session, page=1)
        third = list_contacts(session, page=3)
        beyond = list_contacts(session, page=9)
    assert (first.total, first.pages, len(first.rows)) == (121, 3, PER_PAGE)
    assert [r.name for r in first.rows[:2]] == ["Customer 0119", "Customer 0118"]
    assert first.has_next and not first.has_previous
    assert len(third.rows) == 21
    assert third.rows[-1].name == "Imported"  # no inbound message yet
    assert not third.has_next
    assert beyond.rows == [] and beyond.total == 121


def test_one_query_fetches_a_page_with_its_consent_summary(
    engine: Engine, statements: list[str]
) -> None:
    add_contacts(engine, 60)
    with Session(engine) as session:
        for contact in session.exec(select(Contact)).all():
            for category, granted in (("orders", True), ("offers", False)):
                session.add(
                    Consent(
                        contact_id=contact.id,
                        category=category,
                        granted=granted,
                        source="web",
                        updated_at=START,
                        granted_at=START,
                    )
                )
        session.commit()
    statements.clear()
    with Session(engine) as session:
        page = list_contacts(session, page=1)
    assert len(statements) == 1
    assert len(page.rows) == PER_PAGE
    for row in page.rows:
        assert set(row.consents) == {"orders", "offers"}
        assert row.consents["orders"].granted and not row.consents["offers"].granted


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("9715", {"971501234567", "971559876543"}),
        ("+971 50-123", {"971501234567"}),
        ("US.13", {"US.1357924680"}),
        ("layla", {"971501234567"}),
        ("HADDAD", {"971501234567", "971559876543"}),
        ("ليلى", {"966500000001"}),
        ("%", set()),
        ("_", set()),
        ("501234567", {"971501234567"}),  # any part of the number, from four digits
        ("4567", {"971501234567"}),  # the last digits, as a caller reads them out
        ("+971 55 987", {"971559876543"}),
        ("0000", {"966500000001"}),
        ("715", set()),  # under four digits: the start of the number only
        ("97", {"971501234567", "971559876543"}),
        ("bakes", {"US.2468013579"}),  # the WhatsApp username
        ("2468013", {"US.2468013579"}),  # any part of a user id
    ],
)
def test_search_matches_any_part_of_number_user_id_name_or_username(
    engine: Engine, search: str, expected: set[str]
) -> None:
    with Session(engine) as session:
        for wa_id, user_id, name, username in (
            ("971501234567", None, "Layla Haddad", None),
            ("971559876543", None, "Omar Haddad", None),
            ("966500000001", None, "ليلى", None),
            (None, "US.1357924680", "Sam", None),
            (None, "US.2468013579", "Nadia", "nadiabakes"),
        ):
            session.add(
                Contact(
                    wa_id=wa_id, user_id=user_id, name=name, username=username, created_at=START
                )
            )
        session.commit()
        found = list_contacts(session, search=search)
    assert {row.key for row in found.rows} == expected
    assert found.total == len(expected)


def test_the_list_page_searches_and_keeps_the_search_across_pages(
    engine: Engine, staff_client: FlaskClient
) -> None:
    add_contacts(engine, 75)
    page = staff_client.get("/console/?q=Customer").get_data(as_text=True)
    assert "75 contacts matching" in page
    assert "Page 1 of 2" in page
    assert 'href="/console/?q=Customer&amp;page=2"' in page
    assert page.index("Customer 0074") < page.index("Customer 0073")

    second = staff_client.get("/console/?q=Customer&page=2").get_data(as_text=True)
    assert "Customer 0024" in second and "Customer 0025" not in second
    assert 'href="/console/?q=Customer&amp;page=1"' in second

    one = staff_client.get("/console/?q=15550000007").get_data(as_text=True)
    assert "1 contact matching" in one
    assert 'href="/console/contacts/15550000007"' in one

    assert staff_client.get("/console/?page=banana").status_code == 200
    assert "No contacts match" in staff_client.get("/console/?q=nobody").get_data(as_text=True)
