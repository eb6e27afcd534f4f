"""Settling against the fake Graph API: Meta's error outcomes, early statuses, settling faults."""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

import bot.outbound.settle
from bot.outbound.settle import MAX_ATTEMPTS, DispatchStats, Settled
from storage.consents import current_consents, ledger_of
from storage.db import session_scope
from storage.models import Contact, Message
from storage.ratelimit import MemoryRateLimiter
from storage.statuses import record_status
from storage.types import utcnow
from tests.clock import ManualClock
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    PHONE_NUMBER_ID,
    MakeDispatcher,
    decide,
    graph_client,
    messages,
    outbox,
    queue_texts,
    running,
    wa_id,
)


def test_a_status_that_arrives_before_the_wamid_is_stored_still_moves_the_message(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    """Meta's webhook can beat the dispatcher's commit; its status is applied when settling."""
    [queued] = queue_texts(engine, 1)
    next_wamid = fake.wamid(1)  # the fake server numbers the wamids it gives out
    with session_scope(engine) as session:
        record_status(
            session,
            wamid=next_wamid,
            status="delivered",
            meta_timestamp=utcnow(),
            phone_number_id=PHONE_NUMBER_ID,
            recipient_id=queued.to,
            error_code=None,
            error_title=None,
            raw=None,
        )

    make_dispatcher().drain()

    message = messages(engine, [queued])[queued.message_id]
    assert (message.wamid, message.status) == (next_wamid, "delivered")


@pytest.mark.usefixtures("no_backoff")
def test_with_30_percent_of_calls_failing_every_message_is_delivered_exactly_once(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    fake.failure_rate = 0.3  # HTTP 500, HTTP 429, Meta's 130429, timeouts, in equal parts
    queued = queue_texts(engine, 200)
    dispatcher = make_dispatcher()

    for _ in range(50):
        dispatcher.drain()
        if not outbox(engine):
            break

    assert outbox(engine) == []
    assert fake.delivered() == Counter({q.marker: 1 for q in queued})
    assert all(m.status == "sent" and m.wamid for m in messages(engine, queued).values())
    outcomes = Counter(r.outcome for r in fake.snapshot())
    for failure in ("error 500", "error 429", "error 130429", "timeout"):
        assert outcomes[failure] > 0, outcomes  # each kind of failure was met and survived
    assert dispatcher.stats.sent == 200
    assert dispatcher.stats.retried == sum(outcomes.values()) - 200


@pytest.mark.usefixtures("no_backoff")
def test_a_send_meta_never_answers_is_given_up_at_the_read_timeout_and_sent_again(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    [queued] = queue_texts(engine, 1)
    fake.hang(queued.to)  # the first send gets no answer at all
    impatient = graph_client(fake, timeout=(3.05, 0.2))
    dispatcher = make_dispatcher(transport=impatient)

    for _ in range(10):
        dispatcher.drain()
        if not outbox(engine):
            break

    attempts = fake.attempts_to(queued.to)
    assert attempts[0].outcome == "timeout"
    # Sent again, and stored with what Meta accepted. (At least once: on a busy machine a
    # later answer may also outlast so short a read timeout and be sent once more.)
    assert "delivered" in [r.outcome for r in attempts[1:]]
    stored = messages(engine, [queued])[queued.message_id]
    assert stored.status == "sent"
    assert stored.wamid in {r.wamid for r in attempts if r.outcome == "delivered"}
    assert dispatcher.stats.retried >= 1


@pytest.mark.parametrize(
    ("code", "title"), [(131047, "Re-engagement message"), (131026, "Message Undeliverable")]
)
def test_permanent_errors_end_failed_with_metas_code_and_are_not_retried(
    engine: Engine,
    fake: FakeGraph,
    make_dispatcher: MakeDispatcher,
    no_backoff: None,
    code: int,
    title: str,
) -> None:
    failing, fine = queue_texts(engine, 2)
    fake.force(failing.to, code)
    dispatcher = make_dispatcher()

    dispatcher.drain()
    dispatcher.drain()  # nothing is left to try again

    stored = messages(engine, [failing, fine])
    assert stored[failing.message_id].status == "failed"
    assert stored[failing.message_id].error_code == code
    assert title in (stored[failing.message_id].error_title or "")
    assert len(fake.attempts_to(failing.to)) == 1
    assert stored[fine.message_id].status == "sent"
    assert outbox(engine) == []


def test_c13_error_131050_fails_the_send_and_withdraws_every_marketing_category(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    [queued] = queue_texts(engine, 1, category="offers")
    decide(engine, queued.contact_id, "offers", granted=True, source="whatsapp")
    decide(engine, queued.contact_id, "orders", granted=True, source="whatsapp")
    fake.force(queued.to, 131050)
    dispatcher = make_dispatcher()

    dispatcher.drain()
    dispatcher.drain()

    message = messages(engine, [queued])[queued.message_id]
    assert (message.status, message.error_code) == ("failed", 131050)
    assert len(fake.attempts_to(queued.to)) == 1
    with Session(engine) as session:
        consents = current_consents(session, contact_id=queued.contact_id)
        ledger = ledger_of(session, contact_id=queued.contact_id)
    assert (consents["offers"].granted, consents["offers"].source) == (False, "meta")
    assert consents["orders"].granted  # not a marketing category: untouched
    withdrawal = ledger[-1]
    assert (withdrawal.category, withdrawal.granted, withdrawal.source) == (
        "offers",
        False,
        "meta",
    )
    assert withdrawal.evidence == {"error_code": "131050", "message_id": queued.message_id}
    assert "131050" in withdrawal.text


def test_131049_fails_the_send_and_holds_marketing_to_that_person_for_24_hours(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    [limited] = queue_texts(engine, 1, category="offers")
    to, contact_id = limited.to, limited.contact_id
    for category in ("offers", "orders"):
        decide(engine, contact_id, category, granted=True, source="whatsapp")
    fake.force(to, 131049, times=1)
    dispatcher = make_dispatcher()

    dispatcher.drain()

    message = messages(engine, [limited])[limited.message_id]
    assert (message.status, message.error_code) == ("failed", 131049)
    with Session(engine) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.marketing_held_until is not None
        held_for = contact.marketing_held_until - utcnow()
    assert timedelta(hours=23, minutes=59) < held_for <= timedelta(hours=24)

    # Later sends: marketing is cancelled without reaching Meta, the rest goes out.
    [offer] = queue_texts(engine, 1, recipients=[to], category="offers")
    [order] = queue_texts(engine, 1, recipients=[to], category="orders")
    dispatcher.drain()

    assert [r.outcome for r in fake.attempts_to(to)] == ["error 131049", "delivered"]
    assert fake.attempts_to(to)[1].text == order.marker
    stored = messages(engine, [offer, order])
    assert stored[offer.message_id].status == "cancelled"
    assert "131049" in (stored[offer.message_id].error_title or "")
    assert stored[order.message_id].status == "sent"
    assert outbox(engine) == []


def test_a_fault_while_settling_leaves_that_row_to_its_lease_and_the_loop_running(
    engine: Engine,
    fake: FakeGraph,
    make_dispatcher: MakeDispatcher,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Not a database error but a fault of ours: the other rows settle, the thread lives on."""

    def broken(*args: object, **kwargs: object) -> bool:
        raise RuntimeError("a bug")

    monkeypatch.setattr(bot.outbound.settle, "apply_refusal", broken)
    queued = queue_texts(engine, 5)
    decide(engine, queued[0].contact_id, "offers", granted=True, source="whatsapp")
    fake.force(queued[0].to, 131050)  # settling it calls the broken function
    dispatcher = make_dispatcher(settle_interval=1.0)  # all five in one group
    with running(dispatcher) as run:
        assert dispatcher.stats.wait_for(lambda s: s.sent == 4, timeout=30)
        [later] = queue_texts(engine, 1, recipients=[wa_id(99)])
        run.poke()
        assert dispatcher.stats.wait_for(lambda s: s.sent == 5, timeout=30)  # still sending
        assert run.thread.is_alive()
    stored = messages(engine, [*queued, later])
    assert stored[queued[0].message_id].status == "queued"  # its outcome was never committed
    assert [row.message_id for row in outbox(engine)] == [queued[0].message_id]


def test_a_row_that_cannot_be_settled_does_not_hold_back_the_rest_of_its_group(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    """The wamid Meta gives the first send is already stored: that row alone cannot settle."""
    queued = queue_texts(engine, 5, recipients=[wa_id(1)])
    with session_scope(engine) as session:
        session.add(
            Message(
                contact_id=queued[0].contact_id,
                direction="in",
                wamid=fake.wamid(1),
                type="text",
                meta_timestamp=utcnow(),
            )
        )
    clock = ManualClock()  # the lease ends when the test says, not when a second has passed
    lease = timedelta(seconds=60)

    def no_pause(seconds: float) -> None:
        """Between tries to settle the row that cannot be (and for the rate, not reached)."""

    dispatcher = make_dispatcher(
        lease=lease, settle_interval=1.0, clock=clock.utcnow, sleep=no_pause
    )

    dispatcher.drain()

    stored = messages(engine, queued)
    assert [stored[q.message_id].status for q in queued] == ["queued"] + ["sent"] * 4
    [held] = outbox(engine)
    assert held.message_id == queued[0].message_id and held.claimed_by  # left to its lease

    clock.advance(lease.total_seconds())
    assert dispatcher.drain() == 0  # held to the last moment of its lease
    clock.advance(0.001)
    dispatcher.drain()  # the lease is over: sent again (at least once), settled this time
    assert messages(engine, queued)[queued[0].message_id].status == "sent"
    assert outbox(engine) == []
    assert fake.delivered()[queued[0].marker] == 2


@pytest.mark.usefixtures("no_backoff")
def test_a_temporary_error_is_retried_until_the_last_attempt_and_then_fails(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    failing, fine = queue_texts(engine, 2)
    fake.force(failing.to, 131000)  # Meta's "something went wrong", every time
    dispatcher = make_dispatcher()

    for _ in range(MAX_ATTEMPTS + 3):
        dispatcher.drain()
        if not outbox(engine):
            break

    stored = messages(engine, [failing, fine])
    given_up = stored[failing.message_id]
    assert (given_up.status, given_up.error_code) == ("failed", 131000)
    assert f"gave up after {MAX_ATTEMPTS} attempts" in (given_up.error_title or "")
    assert len(fake.attempts_to(failing.to)) == MAX_ATTEMPTS
    assert stored[fine.message_id].status == "sent"
    assert dispatcher.stats == DispatchStats(sent=1, retried=MAX_ATTEMPTS - 1, failed=1)


class RecordingLimiter(MemoryRateLimiter):
    """The in-process limiter, noting what the dispatcher asks of it."""

    def __init__(self) -> None:
        super().__init__(1000)
        self.paced: list[tuple[str, float]] = []
        self.penalties: list[float] = []

    def pace(self, recipient: str, seconds: float) -> None:
        self.paced.append((recipient, seconds))
        super().pace(recipient, seconds)

    def penalise(self, seconds: float) -> None:
        self.penalties.append(seconds)
        super().penalise(seconds)


@pytest.mark.usefixtures("no_backoff")
def test_a_retry_slows_what_metas_error_names_the_recipient_or_everyone(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    paced, throttled, plain = queue_texts(engine, 3)
    fake.force(paced.to, 131056, times=1)  # too many to this person
    fake.force(throttled.to, 130429, times=1)  # the number's throughput
    fake.force(plain.to, 131000, times=1)  # temporary, slows nothing else
    limiter = RecordingLimiter()

    make_dispatcher(limiter=limiter).drain()

    pause = bot.outbound.settle.PAIR_RATE_PAUSE_SECONDS
    assert limiter.paced == [(paced.to, pause)]
    assert limiter.penalties == [bot.outbound.settle.THROUGHPUT_PENALTY_SECONDS]
    stored = messages(engine, [paced, throttled, plain])
    assert stored[throttled.message_id].status == stored[plain.message_id].status == "sent"
    # No backoff here, yet the paced recipient waits for Meta's pause.
    [held] = outbox(engine)
    assert held.message_id == paced.message_id
    assert held.due_at - utcnow() > timedelta(seconds=pause - 1)


def test_stats_count_each_settlement_under_its_own_field() -> None:
    group = DispatchStats()
    group.count(Settled.SENT, 3)
    for settled in (Settled.RETRIED, Settled.FAILED, Settled.CANCELLED, Settled.RELEASED):
        group.count(settled)
    total = DispatchStats()
    total.add(group)
    total.add(group)

    assert total == DispatchStats(sent=6, retried=2, failed=2, cancelled=2, released=2)
    # The line a worker prints when it stops (tests/outbound/test_workers.py reads it).
    assert repr(total) == "DispatchStats(sent=6, retried=2, failed=2, cancelled=2, released=2)"
