"""A contact created by the message's own transaction is read as nothing without reading."""

from __future__ import annotations

from sqlalchemy.engine import Engine

from storage.contacts import lock_or_create_contact
from storage.db import session_scope
from storage.dialogue_state import load_state


def test_a_new_contacts_state_is_what_reading_it_would_give(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact, created = lock_or_create_contact(session, wa_id="447700900321", user_id=None)
        assert created
        contact.language = "ar"
        skipped_row, skipped = load_state(session, contact, new=True)
        read_row, read = load_state(session, contact)

    assert skipped == read
    assert skipped.language == "ar"
    for field in ("contact_id", "stage", "language", "language_chosen", "pending", "reprompts"):
        assert getattr(skipped_row, field) == getattr(read_row, field), field


def test_a_contact_found_again_is_not_new(engine: Engine) -> None:
    with session_scope(engine) as session:
        _, first = lock_or_create_contact(session, wa_id="447700900322", user_id=None)
        _, again = lock_or_create_contact(session, wa_id="447700900322", user_id=None)
    with session_scope(engine) as session:
        _, later = lock_or_create_contact(session, wa_id="447700900322", user_id=None)
    assert (first, again, later) == (True, False, False)
