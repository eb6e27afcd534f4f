"""Contacts: found or created by wa_id or user_id, locked for the length of a transaction."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import or_
from sqlmodel import Session, select
from sqlmodel.sql.expression import SelectOfScalar

from storage.db import is_postgres
from storage.models import Contact
from storage.types import utcnow
from storage.upsert import insert_ignoring_conflict


class ContactKeyMissing(ValueError):
    """An event named neither a wa_id nor a user_id."""


def find_contact(session: Session, *, key: str) -> Contact | None:
    """By wa_id, or by user_id for contacts known only by it."""
    return session.exec(
        select(Contact)
        .where(or_(Contact.wa_id == key, Contact.user_id == key))
        .order_by(
            Contact.wa_id.is_(None)  # a wa_id match wins over a user_id match
        )
    ).first()


def lock_contact(
    session: Session,
    *,
    wa_id: str | None,
    user_id: str | None,
    name: str | None = None,
    username: str | None = None,
    country_code: str | None = None,
) -> Contact:
    """The contact for these ids, created if new, row-locked on PostgreSQL until commit.

    Holding the lock serialises every change to one contact (dialogue, ledger) across workers.
    """
    if not wa_id and not user_id:
        raise ContactKeyMissing("event carries neither wa_id nor user_id")
    contact = _select_for_update(session, wa_id=wa_id, user_id=user_id)
    if contact is None:
        insert_ignoring_conflict(
            session,
            Contact,
            {
                "wa_id": wa_id,
                "user_id": user_id,
                "name": name,
                "username": username,
                "country_code": country_code,
                "created_at": utcnow(),
            },
        )
        contact = _select_for_update(session, wa_id=wa_id, user_id=user_id)
        assert contact is not None, "contact vanished after insert"
    _fill_in(
        session,
        contact,
        wa_id=wa_id,
        user_id=user_id,
        name=name,
        username=username,
        country_code=country_code,
    )
    return contact


def lock_contact_by_id(session: Session, contact_id: int) -> Contact | None:
    """The contact, row-locked on PostgreSQL until commit (as lock_contact does)."""
    return _first_locked(session, select(Contact).where(Contact.id == contact_id))


def lock_known_contact(session: Session, *, wa_id: str) -> Contact | None:
    """The contact with this wa_id if there is one (never created), row-locked until commit."""
    return _first_locked(session, select(Contact).where(Contact.wa_id == wa_id))


def hold_marketing(session: Session, *, contact_id: int, until: datetime) -> None:
    """No marketing message to this contact before `until` (a later hold is kept)."""
    contact = session.get(Contact, contact_id)
    if contact is None:
        return
    if contact.marketing_held_until is None or contact.marketing_held_until < until:
        contact.marketing_held_until = until
        session.add(contact)


def marketing_held(contact: Contact, now: datetime) -> bool:
    return contact.marketing_held_until is not None and contact.marketing_held_until > now


def _select_for_update(
    session: Session, *, wa_id: str | None, user_id: str | None
) -> Contact | None:
    conditions = []
    if wa_id:
        conditions.append(Contact.wa_id == wa_id)
    if user_id:
        conditions.append(Contact.user_id == user_id)
    return _first_locked(
        session, select(Contact).where(or_(*conditions)).order_by(Contact.wa_id.is_(None))
    )


def _first_locked(session: Session, statement: SelectOfScalar[Contact]) -> Contact | None:
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update()
    return session.exec(statement).first()


def _fill_in(session: Session, contact: Contact, **fields: str | None) -> None:
    """Learn ids and profile details as they appear; a user-id-only contact gains its wa_id."""
    for field, value in fields.items():
        if not value or getattr(contact, field) == value:
            continue
        if field in ("wa_id", "user_id"):
            if getattr(contact, field) is not None:
                continue  # ids are stable keys: never overwritten
            taken = session.exec(select(Contact.id).where(getattr(Contact, field) == value)).first()
            if taken is not None:
                continue
        setattr(contact, field, value)
    session.add(contact)


def note_inbound(contact: Contact, at: datetime) -> None:
    """Track first and last inbound by Meta's timestamp (which may arrive out of order)."""
    if contact.first_inbound_at is None or at < contact.first_inbound_at:
        contact.first_inbound_at = at
    if contact.last_inbound_at is None or at > contact.last_inbound_at:
        contact.last_inbound_at = at
