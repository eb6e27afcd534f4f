"""storage.identity: one contact per person, whatever identifiers Meta reports (C27)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlmodel import Session, select

from storage.consents import append_decision, current_consents, ledger_of
from storage.contacts import find_contact, lock_contact
from storage.db import session_scope
from storage.identity import Identity, Reason, Report, adopt, history_of, known_identifiers
from storage.models import Contact, DialogueRow, Suppression
from storage.suppression import carry_suppression, suppress, suppressed_any

KEY = b"k" * 32
NUMBER, OTHER_NUMBER = "16505551234", "447700900123"
USER_ID, OTHER_USER_ID = "US.1410018717833190", "US.2020018717833190"
PARENT = "US.ENT.99887766"
T0 = datetime(2026, 3, 1, 12, tzinfo=UTC)


def decide(session: Session, contact: Contact, category: str, granted: bool, at: datetime) -> None:
    append_decision(
        session,
        contact_id=contact.id,
        category=category,
        granted=granted,
        source="whatsapp",
        occurred_at=at,
        text=f"{category}?",
        text_version="v1",
        evidence={},
    )


def test_c27_joining_two_contacts_keeps_every_row_and_the_newer_decision(engine):
    with session_scope(engine) as session:
        by_number = lock_contact(session, wa_id=NUMBER, user_id=None, name="Sheena")
        by_user_id = lock_contact(session, wa_id=None, user_id=USER_ID, username="sheena.n")
        decide(session, by_number, "orders", True, T0)
        decide(session, by_number, "offers", False, T0 + timedelta(days=2))
        decide(session, by_user_id, "offers", True, T0 + timedelta(days=1))
        session.add(DialogueRow(contact_id=by_number.id, stage="asked", updated_at=T0))
        session.add(
            DialogueRow(
                contact_id=by_user_id.id, stage="subscribed", updated_at=T0 + 1 * timedelta(days=1)
            )
        )

    with session_scope(engine) as session:
        person = lock_contact(session, wa_id=NUMBER, user_id=USER_ID, at=T0 + timedelta(days=3))
        person_id = person.id

    with Session(engine) as session:
        (only,) = session.exec(select(Contact)).all()
        assert only.id == person_id
        assert (only.wa_id, only.user_id, only.name, only.username) == (
            NUMBER,
            USER_ID,
            "Sheena",
            "sheena.n",
        )
        assert len(ledger_of(session, contact_id=person_id)) == 3
        state = {
            c: row.granted for c, row in current_consents(session, contact_id=person_id).items()
        }
        assert state == {"orders": True, "offers": False}  # the newer withdrawal stands
        assert session.get(DialogueRow, person_id).stage == "subscribed"  # the newer dialogue
        merged = [
            (c.field, c.previous, c.current) for c in history_of(session, contact_id=person_id)
        ]
        assert ("user_id", USER_ID, USER_ID) in merged
        assert ("username", "sheena.n", "sheena.n") in merged


def test_c27_a_late_message_does_not_undo_a_change(engine):
    with session_scope(engine) as session:
        contact = lock_contact(session, wa_id=NUMBER, user_id=USER_ID, at=T0)
        adopt(
            session,
            contact,
            Identity(wa_id=OTHER_NUMBER, user_id=OTHER_USER_ID),
            Report(at=T0 + timedelta(days=1), reason=Reason.NUMBER_CHANGED),
        )
    with session_scope(engine) as session:
        late = lock_contact(session, wa_id=NUMBER, user_id=USER_ID, at=T0 + timedelta(hours=1))
        assert (late.wa_id, late.user_id) == (OTHER_NUMBER, OTHER_USER_ID)
    with Session(engine) as session:
        assert len(session.exec(select(Contact)).all()) == 1
    # Long after the change, the old number is someone else's.
    with session_scope(engine) as session:
        newcomer = lock_contact(session, wa_id=NUMBER, user_id="US.555", at=T0 + timedelta(days=9))
        assert newcomer.id != late.id


def test_c27_a_parent_user_id_links_portfolios_a_username_only_without_conflict(engine):
    with session_scope(engine) as session:
        first = lock_contact(
            session, wa_id=None, user_id=USER_ID, parent_user_id=PARENT, username="kai"
        )
        first_id = first.id
    with session_scope(engine) as session:
        # Another portfolio's user id, the same parent: the same person.
        assert (
            lock_contact(session, wa_id=None, user_id=OTHER_USER_ID, parent_user_id=PARENT).id
            == first_id
        )
    with session_scope(engine) as session:
        # The same username with a contradicting user id: not taken for the same person.
        stranger = lock_contact(session, wa_id=None, user_id="US.777", username="kai")
        assert stranger.id != first_id
    with Session(engine) as session:
        assert find_contact(session, key=PARENT).id == first_id


def test_c27_known_identifiers_leave_out_a_number_someone_else_holds_now(engine):
    with session_scope(engine) as session:
        person = lock_contact(session, wa_id=NUMBER, user_id=USER_ID, at=T0)
        adopt(
            session,
            person,
            Identity(wa_id=OTHER_NUMBER, user_id=OTHER_USER_ID),
            Report(at=T0 + timedelta(days=1), reason=Reason.NUMBER_CHANGED),
        )
        assert known_identifiers(session, person) == (
            OTHER_NUMBER,
            OTHER_USER_ID,
            NUMBER,
            USER_ID,
        )
        lock_contact(session, wa_id=NUMBER, user_id="US.555", at=T0 + timedelta(days=30))
        assert known_identifiers(session, person) == (OTHER_NUMBER, OTHER_USER_ID, USER_ID)


def test_c27_suppression_follows_the_person_and_keeps_its_time(engine):
    erased_at = T0 - timedelta(days=5)
    with session_scope(engine) as session:
        suppress(session, key=KEY, wa_id=NUMBER, reason="erasure", since=erased_at)
        assert carry_suppression(session, key=KEY, before=[NUMBER], after=[OTHER_NUMBER, None])
        assert not carry_suppression(session, key=KEY, before=[USER_ID], after=[OTHER_USER_ID])
        assert suppressed_any(session, key=KEY, identifiers=[None, OTHER_NUMBER])
        assert not suppressed_any(session, key=KEY, identifiers=[OTHER_USER_ID])
        times = {row.created_at for row in session.exec(select(Suppression))}
    assert times == {erased_at}


def test_c27_a_change_reported_by_a_message_carries_suppression(engine):
    with session_scope(engine) as session:
        lock_contact(session, wa_id=NUMBER, user_id=None)
        suppress(session, key=KEY, wa_id=NUMBER, reason="erasure")
    with session_scope(engine) as session:
        lock_contact(session, wa_id=NUMBER, user_id=USER_ID, suppression_key=KEY)
        assert suppressed_any(session, key=KEY, identifiers=[USER_ID])
