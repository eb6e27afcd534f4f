"""The consent check at send time: what may no longer be sent is cancelled, never sent."""

from __future__ import annotations

from collections import Counter

from flask import Flask
from sqlalchemy.engine import Engine

from bot.wiring.services import services
from storage.db import session_scope
from storage.suppression import suppress
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    MakeDispatcher,
    decide,
    messages,
    outbox,
    queue_texts,
    wa_id,
)


def test_c14_a_business_message_whose_consent_was_withdrawn_after_queueing_is_cancelled(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    [offer] = queue_texts(engine, 1, category="offers", recipients=[wa_id(7)])
    [order] = queue_texts(engine, 1, category="orders", recipients=[wa_id(7)])
    for category in ("offers", "orders"):
        decide(engine, offer.contact_id, category, granted=True, source="whatsapp")
    # Queued while granted; withdrawn before the dispatcher got to it.
    decide(engine, offer.contact_id, "offers", granted=False, source="whatsapp")

    make_dispatcher().drain()

    stored = messages(engine, [offer, order])
    assert stored[offer.message_id].status == "cancelled"
    assert "offers" in (stored[offer.message_id].error_title or "")
    assert fake.delivered() == Counter({order.marker: 1})  # the offer never reached Meta
    assert stored[order.message_id].status == "sent"
    assert outbox(engine) == []


def test_c18_nothing_is_sent_to_a_number_suppressed_after_queueing(
    app: Flask, engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    [queued] = queue_texts(engine, 1)
    with session_scope(engine) as session:
        suppress(
            session,
            key=services(app).settings.suppression_key,
            wa_id=queued.to,
            reason="erased",
        )

    make_dispatcher().drain()

    assert fake.snapshot() == []
    assert messages(engine, [queued])[queued.message_id].status == "cancelled"
