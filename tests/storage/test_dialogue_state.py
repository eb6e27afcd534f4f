"""A contact's dialogue state: read as nothing without reading for a contact the message's own
transaction created, and read alike alone and together with others."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import inspect
from sqlalchemy.engine import Engine

from bot.dev import simulate
from storage.contacts import lock_or_create_contact
from storage.db import session_scope
from storage.dialogue_state import load_state, load_states, new_row
from storage.models import DialogueRow
from tests.conftest import MetaWebhook


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


def test_states_read_together_are_the_states_read_one_by_one(
    meta: MetaWebhook, engine: Engine
) -> None:
    """Three customers at different points (asked, opted in, stopped), each with questions,
    withdrawals and consents of their own: read together, each reads as it does alone."""
    scripts = {
        "447700900401": ["hello"],
        "447700900402": ["hello", "yes"],
        "447700900403": ["hello", "yes", "stop offers", "stop"],
    }
    for wa_id, texts in scripts.items():
        for text in texts:
            assert meta.post(simulate.text_body(wa_id=wa_id, text=text)).status_code == 200
    with session_scope(engine) as session:
        contacts = [
            lock_or_create_contact(session, wa_id=wa_id, user_id=None)[0] for wa_id in scripts
        ]
        together = load_states(session, contacts)
        alone = {contact.id: load_state(session, contact) for contact in contacts}
        assert set(together) == set(alone) == {contact.id for contact in contacts}
        for contact in contacts:
            assert together[contact.id][1] == alone[contact.id][1]
            assert together[contact.id][0] is alone[contact.id][0]  # the one row object
        states = [alone[contact.id][1] for contact in contacts]
    # Told apart: the three are not the same empty state.
    assert len({(s.stage, s.granted, s.withdrawn_at is None) for s in states}) == 3
    assert states[0].last_question is not None  # asked; the stop cancelled the third's
    assert states[2].withdrawn_at is not None


def test_a_first_dialogue_row_is_what_the_model_would_build() -> None:
    """Built without the model's constructor for speed: the same values, a row not yet in any
    session (save_result then inserts it)."""
    built = new_row(7)
    expected = DialogueRow(contact_id=7)
    names = [name for name in DialogueRow.model_fields if name != "updated_at"]
    assert {name: getattr(built, name) for name in names} == {
        name: getattr(expected, name) for name in names
    }
    assert abs(built.updated_at - expected.updated_at) < timedelta(seconds=5)
    assert inspect(built).transient
    assert new_row(8).pending is None and new_row(8).contact_id == 8
