"""Contacts: found or created by any identifier of the person, locked for a transaction."""

from __future__ import annotations

from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import or_
from sqlalchemy.orm import class_mapper
from sqlalchemy.orm.base import instance_state
from sqlmodel import Session, col, select
from sqlmodel.sql.expression import SelectOfScalar

from storage.db import is_postgres
from storage.deferred import insert_row, write_held
from storage.identity import (
    Identity,
    Report,
    adopt,
    earlier_holder,
    lock_holders,
    strong_identifiers,
    weak_match,
)
from storage.known_people import KnownPeople
from storage.models import Contact
from storage.suppression import carry_suppression
from storage.types import utcnow
from storage.upsert import insert_ignoring


class ContactKeyMissing(ValueError):
    """An event named neither a wa_id nor a user_id."""


def find_contact(session: Session, *, key: str) -> Contact | None:
    """The contact a number or a user id names now (a parent user id as a last resort)."""
    return session.exec(
        select(Contact)
        .where(or_(Contact.wa_id == key, Contact.user_id == key, Contact.parent_user_id == key))
        .order_by(
            Contact.wa_id.is_(None),  # a wa_id match wins over a user_id match
            col(Contact.parent_user_id) == key,  # and either over a parent id, shared maybe
            col(Contact.id),
        )
    ).first()


def lock_contact(
    session: Session,
    *,
    wa_id: str | None,
    user_id: str | None,
    parent_user_id: str | None = None,
    name: str | None = None,
    username: str | None = None,
    country_code: str | None = None,
    at: datetime | None = None,
    wamid: str | None = None,
    suppression_key: bytes | None = None,
) -> Contact:
    """The person these identifiers name, created if new, row-locked on PostgreSQL until commit
    (see lock_or_create_contact)."""
    return lock_or_create_contact(
        session,
        wa_id=wa_id,
        user_id=user_id,
        parent_user_id=parent_user_id,
        name=name,
        username=username,
        country_code=country_code,
        at=at,
        wamid=wamid,
        suppression_key=suppression_key,
    )[0]


def lock_or_create_contact(
    session: Session,
    *,
    wa_id: str | None,
    user_id: str | None,
    parent_user_id: str | None = None,
    name: str | None = None,
    username: str | None = None,
    country_code: str | None = None,
    at: datetime | None = None,
    wamid: str | None = None,
    suppression_key: bytes | None = None,
    known: KnownPeople | None = None,
    inbound_at: datetime | None = None,
) -> tuple[Contact, bool]:
    """The person these identifiers name, and whether this transaction created them.

    Found by number or user id; else by the contact that held one of them when the message of
    `at` was written (delivered late, after a change); else by parent user id or username. The
    contact then takes every identifier as reported, and a contact holding another of them is
    joined into it: one person, one contact (storage.identity). Given the suppression key, a
    suppression of any identifier the person had follows them to the ones they have now. Holding
    the lock serialises every change to one contact (dialogue, ledger) across workers. `known`:
    the body's answers, read and locked beforehand (storage.known_people), where they still hold.
    `inbound_at`: the time of the person's own message this is for; a new contact is written
    with it as their first and last inbound (note_inbound), saving an UPDATE.
    """
    if not wa_id and not user_id:
        raise ContactKeyMissing("event carries neither wa_id nor user_id")
    identity = Identity(
        wa_id=wa_id, user_id=user_id, parent_user_id=parent_user_id, username=username
    )
    report = Report(at=at or utcnow(), wamid=wamid)
    contact = _locate(session, identity, report, known)
    created = False
    if contact is None:
        values = identity.reported() | {"name": name, "country_code": country_code}
        if inbound_at is not None:
            values |= {"first_inbound_at": inbound_at, "last_inbound_at": inbound_at}
        # Not one another message may find by a parent user id or a username (weak_match): that
        # reads the table, where a held row is not yet.
        if known is not None and known.fresh and not (parent_user_id or username):
            contact = _hold(session, known.fresh.pop(0), values)
        else:
            contact = _insert(session, values, known)
        created = contact is not None
        if contact is None:  # another transaction created them meanwhile: theirs, now locked
            contact = _locate(session, identity, report)
            assert contact is not None, "contact vanished after insert"
    had = adopt(session, contact, identity, report)
    if suppression_key is not None and set(had) != set(strong_identifiers(contact)):
        carry_suppression(
            session, key=suppression_key, before=had, after=strong_identifiers(contact)
        )
    for field, value in (("name", name), ("country_code", country_code)):
        if value and getattr(contact, field) != value:
            setattr(contact, field, value)
    session.add(contact)
    return contact, created


def _insert(
    session: Session, values: dict[str, object], known: KnownPeople | None
) -> Contact | None:
    """A new contact, returned by the INSERT itself (ours and locked until commit), or None when
    another transaction holds one of its keys."""
    dialect = session.get_bind().dialect.name
    if dialect == "sqlite":
        # The ids the body's lookup handed out (storage.known_people) are each one past the
        # largest, as SQLite's own next id would be: the row takes one of them, or, with none
        # left, its own once the rows held under them are in the table.
        if known is not None and known.fresh:
            values = {**values, "id": known.fresh.pop(0)}
        else:
            write_held(session)
    statement = _insert_statement(dialect)
    return session.scalars(statement, {**values, "created_at": utcnow()}).first()


def _hold(session: Session, contact_id: int, values: dict[str, object]) -> Contact:
    """A new contact under an id the body's lookup allocated, its row held for the body's one
    write (storage.deferred): two round trips saved on every new customer's first message.

    Nobody can see or lock the row before it is written. A transaction creating the same person
    meanwhile makes that write fail on the unique identifiers, and the body is stored again,
    each message apart, finding the person the other transaction created.
    """
    row = {**_NO_VALUES, **values, "id": contact_id, "created_at": utcnow()}
    insert_row(session, _CONTACT, row)
    # As if read from the row (the deferred INSERT writes it): SQLModel's constructor and the
    # ORM's change tracking took a twentieth of a first message's CPU.
    contact = _CONTACT_MANAGER.new_instance()
    state = instance_state(contact)
    state.dict.update(row)
    state.key = _CONTACT_MAPPER.identity_key_from_primary_key((contact_id,))
    session.add(contact)
    return contact


@lru_cache(maxsize=4)
def _insert_statement(dialect: str) -> Any:
    """Built once: every new customer's first message runs it."""
    return select(Contact).from_statement(insert_ignoring(dialect, _CONTACT, _CONTACT_COLUMNS))


_CONTACT = Contact.__table__  # type: ignore[attr-defined]
_CONTACT_COLUMNS = tuple(_CONTACT.columns.keys())
_NO_VALUES = dict.fromkeys(_CONTACT_COLUMNS)
_CONTACT_MAPPER = class_mapper(Contact)
_CONTACT_MANAGER = _CONTACT_MAPPER.class_manager


def _locate(
    session: Session, identity: Identity, report: Report, known: KnownPeople | None = None
) -> Contact | None:
    holders = known.holders_of(identity) if known else lock_holders(session, identity)
    if holders:
        return holders[0]  # the oldest; adopt() joins the others into it
    if known:
        earlier = known.earlier_holder(identity, at=report.at)
    else:
        earlier = earlier_holder(session, identity, at=report.at)
    found = earlier or weak_match(session, identity)
    return lock_contact_by_id(session, found) if found is not None else None


def contact_address(contact: Contact) -> str:
    """Where messages to the person go: their number if known, else their user id (C27)."""
    address = contact.wa_id or contact.user_id
    assert address is not None, "a contact always has a number or a user id"
    return address


def lock_contact_by_id(session: Session, contact_id: int) -> Contact | None:
    """The contact, row-locked on PostgreSQL until commit (as lock_contact does)."""
    return _first_locked(session, select(Contact).where(Contact.id == contact_id))


def lock_known_contact(session: Session, *, wa_id: str) -> Contact | None:
    """The contact a number or user id names (never created), row-locked until commit."""
    found = find_contact(session, key=wa_id)
    return lock_contact_by_id(session, found.id) if found is not None and found.id else None


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


def _first_locked(session: Session, statement: SelectOfScalar[Contact]) -> Contact | None:
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update()
    return session.exec(statement).first()


def note_inbound(contact: Contact, at: datetime) -> None:
    """Track first and last inbound by Meta's timestamp (which may arrive out of order)."""
    if contact.first_inbound_at is None or at < contact.first_inbound_at:
        contact.first_inbound_at = at
    if contact.last_inbound_at is None or at > contact.last_inbound_at:
        contact.last_inbound_at = at
