"""Instances built from rows read beside the session are what a query would have loaded: the
session's own instance for a key it holds, else a new one, attached and unchanged."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import inspect
from sqlalchemy.engine import Engine
from sqlmodel import Session, select

from storage.contacts import lock_contact
from storage.db import session_scope
from storage.models import Consent
from storage.orm_rows import loaded, rows_of

AT = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)


def _consent(contact_id: int, category: str, granted: bool) -> Consent:
    return Consent(
        contact_id=contact_id, category=category, granted=granted, source="whatsapp", updated_at=AT
    )


def test_rows_become_the_instances_a_query_would_load(engine: Engine) -> None:
    with session_scope(engine) as session:
        contact_id = lock_contact(session, wa_id="447700900601", user_id=None).id
        assert contact_id is not None
        session.add_all(
            [_consent(contact_id, "offers", True), _consent(contact_id, "orders", False)]
        )
    with Session(engine) as session:
        held = session.exec(select(Consent).where(Consent.category == "orders")).one()
        held.granted = True  # changed in this session, not yet flushed
        rows = session.execute(rows_of(Consent).order_by(Consent.category)).all()
        offers, orders = loaded(session, Consent, rows)
        assert orders is held and orders.granted is True  # the session's, as a query leaves it
        assert (offers.contact_id, offers.category, offers.granted) == (contact_id, "offers", True)
        assert offers.updated_at == AT
        state = inspect(offers)
        assert state.persistent and not state.modified  # attached, nothing to flush
        assert session.get(Consent, (contact_id, "offers")) is offers  # in the identity map
        offers.granted = False
        session.commit()
    with Session(engine) as session:
        granted = dict(session.exec(select(Consent.category, Consent.granted)).all())
    assert granted == {"offers": False, "orders": True}  # each change written as any other
