"""Contacts by wa_id for a batch of decisions: found or created, and locked, in two statements.

The batch form of storage.contacts.lock_contact for numbers (consent collected elsewhere names a
number, never a user id): the business API records one, the importer thousands at a time.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy import String, bindparam, or_, text
from sqlalchemy.dialects import sqlite
from sqlalchemy.dialects.postgresql import ARRAY
from sqlmodel import Session, col, select

from storage.bulk import any_of
from storage.db import is_postgres
from storage.models import Contact
from storage.types import utcnow


def lock_contacts(session: Session, wa_ids: Collection[str]) -> dict[str, tuple[int, str | None]]:
    """(contact id, user id) of each number, created if new, row-locked on PostgreSQL until
    commit.

    Locked in id order, the order every other batch takes them in, so two batches never wait
    on each other in a circle; a single contact's lock (the webhook) never takes a second one.
    """
    if not wa_ids:
        return {}
    postgres = is_postgres(session.get_bind())
    numbers = sorted(wa_ids)
    if postgres:
        # One statement, one array parameter, however many numbers.
        session.execute(
            text(
                "INSERT INTO contact (wa_id, created_at) SELECT n, :now FROM unnest(:numbers) AS n"
                " ON CONFLICT DO NOTHING"
            ).bindparams(bindparam("numbers", type_=ARRAY(String()))),
            {"numbers": numbers, "now": utcnow()},
        )
    else:
        now = utcnow()
        session.execute(
            sqlite.insert(Contact).on_conflict_do_nothing(),
            [{"wa_id": wa_id, "created_at": now} for wa_id in numbers],
        )
    # Ids only: loading thousands of ORM objects would cost more than the rest of the batch.
    statement = (
        select(Contact.id, Contact.wa_id, Contact.user_id)
        .where(any_of(session, Contact.wa_id, numbers))
        .order_by(col(Contact.id))
    )
    if postgres:
        statement = statement.with_for_update()
    return {
        wa_id: (contact_id, user_id)
        for contact_id, wa_id, user_id in session.exec(statement)
        if wa_id and contact_id is not None
    }


def strong_identifiers_of(session: Session, keys: Collection[str]) -> dict[str, tuple[str, ...]]:
    """For each number or user id that names a contact now, every identifier suppression goes
    by (storage.identity.strong_identifiers), in one query; nothing is created."""
    if not keys:
        return {}
    rows = session.exec(
        select(Contact.wa_id, Contact.user_id, Contact.parent_user_id).where(
            or_(any_of(session, Contact.wa_id, keys), any_of(session, Contact.user_id, keys))
        )
    )
    found: dict[str, tuple[str, ...]] = {}
    for wa_id, user_id, parent_user_id in rows:
        strong = tuple(v for v in (wa_id, user_id, parent_user_id) if v)
        for key in (wa_id, user_id):
            if key in keys:
                found[key] = strong
    return found
