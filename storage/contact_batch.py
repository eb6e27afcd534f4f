"""Contacts by wa_id for a batch of decisions: found or created, and locked, in two statements.

The batch form of storage.contacts.lock_contact for numbers (consent collected elsewhere names a
number, never a user id): the business API records one, the importer thousands at a time.
"""

from __future__ import annotations

from collections.abc import Collection

from sqlalchemy.dialects import postgresql, sqlite
from sqlmodel import Session, col, select

from storage.db import is_postgres
from storage.models import Contact
from storage.types import utcnow


def lock_contacts(session: Session, wa_ids: Collection[str]) -> dict[str, Contact]:
    """The contact of each number, created if new, row-locked on PostgreSQL until commit.

    Locked in id order, the order every other batch takes them in, so two batches never wait
    on each other in a circle; a single contact's lock (the webhook) never takes a second one.
    """
    if not wa_ids:
        return {}
    postgres = is_postgres(session.get_bind())
    insert = postgresql.insert if postgres else sqlite.insert
    now = utcnow()
    session.execute(
        insert(Contact).on_conflict_do_nothing(),
        [{"wa_id": wa_id, "created_at": now} for wa_id in wa_ids],
    )
    statement = select(Contact).where(col(Contact.wa_id).in_(wa_ids)).order_by(col(Contact.id))
    if postgres:
        statement = statement.with_for_update()
    return {contact.wa_id: contact for contact in session.exec(statement) if contact.wa_id}
