"""The consent check at send time: what may no longer be sent is cancelled, never sent."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from flask import Flask
from sqlalchemy.engine import Engine

from bot.outbound.attempt import CONSENT_CHECK_MAX_AGE_SECONDS, Batch, ConsentCheck
from bot.wiring.services import services
from storage.db import session_scope
from storage.outbox import Claimed, claim_due
from storage.suppression import suppress
from tests.clock import ManualClock
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


class RecordingCheck:
    """The real consent check, recording which rows each read covered."""

    def __init__(self, check: ConsentCheck) -> None:
        self.check = check
        self.reads: list[list[int]] = []

    def refused(self, rows: list[Claimed]) -> dict[int, str]:
        self.reads.append([row.outbox_id for row in rows])
        return self.check.refused(rows)


def test_a_batch_reads_consent_again_once_stale_for_the_rows_not_yet_asked_about(
    app: Flask, engine: Engine
) -> None:
    queued = queue_texts(engine, 3, category="offers")
    for each in queued:
        decide(engine, each.contact_id, "offers", granted=True, source="whatsapp")
    with session_scope(engine) as session:
        first, second, third = claim_due(
            session, worker="test", limit=10, lease=timedelta(seconds=60)
        )
    settings = services(app).settings
    check = RecordingCheck(
        ConsentCheck(
            engine=engine,
            suppression_key=settings.suppression_key,
            marketing=services(app).catalog.marketing_ids,
        )
    )
    clock = ManualClock()
    batch = Batch(
        [first, second, third],
        check=check,  # type: ignore[arg-type]
        lease=timedelta(seconds=60),
        monotonic=clock.monotonic,
    )

    assert batch.refusal(first) is None  # the first read covers the whole batch
    assert check.reads == [[first.outbox_id, second.outbox_id, third.outbox_id]]

    # Withdrawn after that read: the answer in hand stands while it is fresh.
    for row in (first, third):
        decide(engine, row.contact_id or 0, "offers", granted=False, source="whatsapp")
    assert batch.refusal(second) is None
    assert len(check.reads) == 1

    # Stale: read again, for the one row not asked about yet.
    clock.advance(CONSENT_CHECK_MAX_AGE_SECONDS + 0.001)
    assert "offers" in (batch.refusal(third) or "")
    assert check.reads[1] == [third.outbox_id]
    # A row asked about before keeps the answer it was given.
    assert batch.refusal(first) is None
