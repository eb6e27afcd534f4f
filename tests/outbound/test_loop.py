"""The dispatch loop against the fake Graph API: delivery, claiming ahead, leases, shutdown."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

from sqlalchemy.engine import Engine

from storage.db import session_scope
from storage.outbox import PRIORITY_BUSINESS, claim_due, enqueue_read_receipt, settle_sent_many
from storage.types import utcnow
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    PHONE_NUMBER_ID,
    MakeDispatcher,
    messages,
    outbox,
    queue_texts,
    running,
    wa_id,
)


def test_each_message_is_sent_once_and_its_wamid_stored(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    queued = queue_texts(engine, 60)

    assert make_dispatcher().drain() == 60

    assert fake.delivered() == Counter({q.marker: 1 for q in queued})
    wamids = {r.text: r.wamid for r in fake.deliveries()}
    stored = messages(engine, queued)
    for q in queued:
        assert stored[q.message_id].status == "sent"
        assert stored[q.message_id].wamid == wamids[q.marker]
        assert stored[q.message_id].status_at is not None
    assert outbox(engine) == []
    # What reached Meta is exactly what was queued, from the right number, with the token.
    first = fake.deliveries()[0]
    assert first.phone_number_id == PHONE_NUMBER_ID
    assert first.token == "test"
    assert first.payload["messaging_product"] == "whatsapp"


def test_a_slow_answer_does_not_hold_back_the_rows_claimed_after_it(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    """The loop claims more while a batch's last send waits for Meta, not after."""
    slow = wa_id(0)
    unanswered = fake.hold(slow)  # Meta answers this one only when the test says so
    [slow_message] = queue_texts(engine, 1, recipients=[slow])
    others = queue_texts(engine, 30, recipients=[wa_id(n) for n in range(1, 31)])
    dispatcher = make_dispatcher(batch_size=6, concurrency=4)
    with running(dispatcher):
        assert unanswered.wait_held(1)
        assert fake.wait_for(lambda f: len(f.deliveries()) >= 30)
        # Every other message went out while Meta still had not answered the slow one.
        assert {r.text for r in fake.deliveries()} == {q.marker for q in others}
        assert messages(engine, [slow_message])[slow_message.message_id].status == "queued"
        unanswered.release()
        assert dispatcher.stats.wait_for(lambda s: s.sent == 31, timeout=30)
    assert messages(engine, [slow_message])[slow_message.message_id].status == "sent"


def test_an_answer_queued_behind_a_business_backlog_goes_out_next(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    backlog = queue_texts(engine, 100, priority=PRIORITY_BUSINESS)
    batch_size = 10
    meta = fake.hold()  # the backlog's first send waits for Meta's answer
    # One sending thread: rows leave in the order their lanes started, so the order at Meta
    # is the order of claiming, which is what this is about (threads side by side may
    # overtake one another by any number on a busy machine).
    dispatcher = make_dispatcher(batch_size=batch_size, concurrency=1)
    with running(dispatcher) as run:
        assert meta.wait_held(1)  # mid-backlog: a batch claimed, its first send in flight
        [answer] = queue_texts(engine, 1, recipients=[wa_id(999)])
        run.poke()
        meta.release()
        assert fake.wait_for(lambda f: answer.marker in f.delivered())
    order = [r.text for r in fake.deliveries()]
    # Behind only what the dispatcher held when it was queued (one batch of the 100), ahead of
    # the rest of the backlog.
    assert order.index(answer.marker) <= batch_size < len(backlog), order.index(answer.marker)


def test_read_receipts_are_sent_and_leave_the_outbox(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    with session_scope(engine) as session:
        enqueue_read_receipt(session, phone_number_id=PHONE_NUMBER_ID, wamid="wamid.IN1")

    assert make_dispatcher().drain() == 1

    [receipt] = fake.snapshot()
    assert receipt.outcome == "read"
    assert receipt.payload == {
        "messaging_product": "whatsapp",
        "status": "read",
        "message_id": "wamid.IN1",
    }
    assert outbox(engine) == []


def test_graceful_shutdown_finishes_the_sends_in_flight_and_releases_the_rest(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    meta = fake.hold()
    queued = queue_texts(engine, 40)
    dispatcher = make_dispatcher(concurrency=2, batch_size=40)
    with running(dispatcher) as run:
        assert meta.wait_held(2)  # two sends in flight, waiting for Meta
        assert sum(bool(row.claimed_by) for row in outbox(engine)) == 40  # the whole batch held

        run.stop_event.set()  # told to stop while they wait: they finish, nothing more goes
        meta.release()
        run.stop()

    remaining = outbox(engine)
    assert all(row.claimed_by is None and row.claimed_until is None for row in remaining)
    delivered = fake.delivered()
    # The two in flight were answered and settled; the other 38 of the batch were given back.
    assert len(delivered) == 2 and len(remaining) == 38
    assert set(delivered.values()) == {1}
    stored = messages(engine, queued)
    assert sum(m.status == "sent" for m in stored.values()) == len(delivered)

    # Another dispatcher picks up what was released, at once.
    make_dispatcher().drain()
    assert fake.delivered() == Counter({q.marker: 1 for q in queued})


def test_a_claimed_row_is_not_claimed_again_until_its_lease_ends(engine: Engine) -> None:
    [queued] = queue_texts(engine, 1)
    lease = timedelta(seconds=30)
    with session_scope(engine) as session:
        [mine] = claim_due(session, worker="a", limit=10, lease=lease)
    with session_scope(engine) as session:
        assert claim_due(session, worker="b", limit=10, lease=lease) == []
    later = utcnow() + lease + timedelta(seconds=1)
    with session_scope(engine) as session:
        [theirs] = claim_due(session, worker="b", limit=10, lease=lease, now=later)
    assert theirs.message_id == mine.message_id == queued.message_id

    # The first worker's late answer no longer settles a row it lost.
    with session_scope(engine) as session:
        assert settle_sent_many(session, [(mine, "wamid.LATE")], worker="a", now=utcnow()) == 0
    with session_scope(engine) as session:
        assert settle_sent_many(session, [(theirs, "wamid.B")], worker="b", now=utcnow()) == 1
    assert messages(engine, [queued])[queued.message_id].wamid == "wamid.B"
