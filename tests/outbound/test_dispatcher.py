"""The dispatcher against the fake Graph API: delivery, error policy, consent at send time."""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter
from collections.abc import Callable
from datetime import timedelta

import pytest
from flask import Flask
from flask.testing import FlaskClient
from sqlalchemy.engine import Engine
from sqlmodel import Session

import bot.outbound.pause
import bot.outbound.settle
from bot import create_app
from bot.graph.client import GraphClient, pooled_session
from bot.outbound.loop import Dispatcher
from bot.wiring.services import services
from storage.consents import current_consents, ledger_of
from storage.conversation import record_status
from storage.db import session_scope
from storage.models import Contact, ControlFlag, Message
from storage.outbox import PRIORITY_BUSINESS, claim_due, enqueue_read_receipt, settle_sent
from storage.ratelimit import MemoryRateLimiter
from storage.suppression import suppress
from storage.types import utcnow
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    PHONE_NUMBER_ID,
    TOKEN,
    decide,
    messages,
    outbox,
    queue_texts,
    wa_id,
    wait_until,
)

MakeDispatcher = Callable[..., Dispatcher]


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries come due at once, and Meta's "slow down" costs a moment, not a second."""
    monkeypatch.setattr(bot.outbound.settle, "backoff", lambda attempts, rng=None: 0.0)
    monkeypatch.setattr(bot.outbound.settle, "THROUGHPUT_PENALTY_SECONDS", 0.02)


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


def test_one_recipients_messages_leave_in_the_order_queued(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    queued = queue_texts(engine, 12, recipients=[wa_id(1), wa_id(2)])

    make_dispatcher(concurrency=8).drain()

    for to in (wa_id(1), wa_id(2)):
        expected = [q.marker for q in queued if q.to == to]
        assert [r.text for r in fake.attempts_to(to)] == expected


def test_a_slow_answer_does_not_hold_back_the_rows_claimed_after_it(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    """The loop claims more while a batch's last send waits for Meta, not after."""
    slow = wa_id(0)
    fake.slow(slow, 2.0)
    [slow_message] = queue_texts(engine, 1, recipients=[slow])
    others = queue_texts(engine, 30, recipients=[wa_id(n) for n in range(1, 31)])
    patient = GraphClient(
        pooled_session(fake.base_url, pool_size=4),
        access_token=TOKEN,
        base_url=fake.base_url,
        timeout=(1.0, 5.0),  # waits for the slow answer instead of timing out
    )
    dispatcher = make_dispatcher(batch_size=6, concurrency=4, transport=patient)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    try:
        assert fake.wait_for(lambda f: len(f.deliveries()) >= 30, timeout=10)
        # Every other message went out while Meta still had not answered the slow one.
        assert {r.text for r in fake.deliveries()} == {q.marker for q in others}
        assert messages(engine, [slow_message])[slow_message.message_id].status == "queued"
    finally:
        stop.set()
        thread.join(10)
    assert messages(engine, [slow_message])[slow_message.message_id].status == "sent"


def test_rows_claimed_later_for_a_recipient_being_sent_to_wait_their_turn(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    """Claimed a few at a time, one recipient's messages still leave one after another."""
    to = wa_id(1)
    answer = 0.15
    fake.slow(to, answer)
    queued = queue_texts(engine, 6, recipients=[to])
    dispatcher = make_dispatcher(batch_size=2, concurrency=4)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    try:
        assert fake.wait_for(lambda f: len(f.deliveries()) == 6, timeout=10)
    finally:
        stop.set()
        thread.join(10)
    attempts = fake.attempts_to(to)
    assert [r.text for r in attempts] == [q.marker for q in queued]
    # Each left only after Meta had answered the one before.
    gaps = [later.at - earlier.at for earlier, later in itertools.pairwise(attempts)]
    assert min(gaps) >= answer * 0.95, gaps


def test_an_answer_queued_behind_a_business_backlog_goes_out_next(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    backlog = queue_texts(engine, 100, priority=PRIORITY_BUSINESS)  # two seconds' worth at 50/s
    dispatcher = make_dispatcher(batch_size=10, concurrency=4, limiter=MemoryRateLimiter(50))
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    try:
        assert fake.wait_for(lambda f: len(f.deliveries()) >= 10, timeout=10)
        [answer] = queue_texts(engine, 1, recipients=[wa_id(999)])
        assert fake.wait_for(lambda f: answer.marker in f.delivered(), timeout=10)
    finally:
        stop.set()
        thread.join(10)
    order = [r.text for r in fake.deliveries()]
    # Behind only what the dispatcher already held when it was queued (one batch or so).
    assert order.index(answer.marker) < 10 + 2 * 10, order.index(answer.marker)
    assert len(order) < len(backlog)  # the backlog was still being sent


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


def test_expired_token_pauses_dispatching_readyz_says_why_and_a_new_token_resumes(
    app: Flask,
    app_config: dict[str, str],
    client: FlaskClient,
    engine: Engine,
    fake: FakeGraph,
    make_dispatcher: MakeDispatcher,
) -> None:
    queued = queue_texts(engine, 30)
    fake.expire_token("test")
    dispatcher = make_dispatcher(concurrency=4)

    dispatcher.drain()

    refused = len(fake.snapshot())
    assert 1 <= refused <= 4  # the sends already in flight; the rest of the batch held back
    assert all(r.outcome == "error 190" for r in fake.snapshot())
    assert dispatcher.paused_reason() is not None
    assert dispatcher.drain() == 0 and len(fake.snapshot()) == refused  # paused: nothing sent
    assert all(m.status == "queued" for m in messages(engine, queued).values())
    assert all(row.claimed_by is None for row in outbox(engine))  # nothing held while paused

    ready = client.get("/readyz")
    assert ready.status_code == 200  # intake still works; sending is what stopped
    assert ready.json is not None
    assert ready.json["dispatch"].startswith("paused: access token rejected by Meta (error 190)")
    assert "WHATSAPP_ACCESS_TOKEN" in ready.json["dispatch"]
    status = app.test_cli_runner().invoke(args=["outbox", "status"])
    assert "paused: access token rejected" in status.output
    assert "pending: 30" in status.output
    assert "answers, due: 30 (oldest due" in status.output

    # The app restarted with a new token sends everything, and is ready without a pause.
    fake.add_token("fresh")
    fresh_app = create_app({**app_config, "WHATSAPP_ACCESS_TOKEN": "fresh"})
    try:
        assert fresh_app.test_client().get("/readyz").json["dispatch"] == "running"  # type: ignore[index]
        assert services(fresh_app).dispatcher().paused_reason() is None
    finally:
        services(fresh_app).engine.dispose()
    make_dispatcher(token="fresh").drain()
    assert fake.delivered() == Counter({q.marker: 1 for q in queued})
    assert outbox(engine) == []


def test_outbox_resume_lifts_the_pause(app: Flask, engine: Engine) -> None:
    with session_scope(engine) as session:
        session.add(ControlFlag(name=bot.outbound.pause.PAUSE_FLAG, value="x paused"))
    runner = app.test_cli_runner()
    assert runner.invoke(args=["outbox", "resume"]).output.strip() == "resumed"
    assert runner.invoke(args=["outbox", "resume"]).output.strip() == "was not paused"


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


def test_after_131056_the_recipient_is_paced_while_others_continue(
    engine: Engine,
    fake: FakeGraph,
    make_dispatcher: MakeDispatcher,
    no_backoff: None,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    pause = 0.8
    monkeypatch.setattr(bot.outbound.settle, "PAIR_RATE_PAUSE_SECONDS", pause)
    paced, other = wa_id(1), wa_id(2)
    fake.force(paced, 131056, times=1)
    first = queue_texts(engine, 4, recipients=[paced, other])  # paced, other, paced, other
    dispatcher = make_dispatcher()

    dispatcher.drain()
    later = queue_texts(engine, 2, recipients=[paced, other])
    dispatcher.drain()

    # The other recipient got all of theirs; the paced one nothing after Meta's 131056, not
    # even the message queued behind it in the same batch.
    expected_other = [first[1].marker, first[3].marker, later[1].marker]
    assert [r.text for r in fake.attempts_to(other)] == expected_other
    assert [r.outcome for r in fake.attempts_to(paced)] == ["error 131056"]

    deadline = time.monotonic() + 5
    while outbox(engine) and time.monotonic() < deadline:
        dispatcher.drain()
        time.sleep(0.05)

    attempts = fake.attempts_to(paced)
    assert [r.outcome for r in attempts] == ["error 131056"] + ["delivered"] * 3
    # In the order queued, and not before Meta's pause was over.
    assert [r.text for r in attempts[1:]] == [first[0].marker, first[2].marker, later[0].marker]
    assert attempts[1].at - attempts[0].at >= pause * 0.95
    assert set(fake.delivered().values()) == {1}


def test_graceful_shutdown_finishes_the_sends_in_flight_and_releases_the_rest(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    fake.latency = 0.3
    queued = queue_texts(engine, 40)
    dispatcher = make_dispatcher(concurrency=2, batch_size=40)
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    assert fake.wait_for(lambda f: len(f.deliveries()) >= 2, timeout=5)
    assert any(row.claimed_by for row in outbox(engine))  # it holds the rest of its batch

    stopped_at = time.monotonic()
    stop.set()
    thread.join(10)

    assert not thread.is_alive()
    assert time.monotonic() - stopped_at < 2  # did not send the 40-row batch to the end
    remaining = outbox(engine)
    assert remaining and all(
        row.claimed_by is None and row.claimed_until is None for row in remaining
    )
    delivered = fake.delivered()
    assert len(delivered) + len(remaining) == 40
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
        assert not settle_sent(session, mine, worker="a", wamid="wamid.LATE", now=utcnow())
    with session_scope(engine) as session:
        assert settle_sent(session, theirs, worker="b", wamid="wamid.B", now=utcnow())
    assert messages(engine, [queued])[queued.message_id].wamid == "wamid.B"


def test_on_sqlite_one_dispatcher_sends_at_a_time_and_another_takes_over_when_it_stops(
    database_url: str, engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    if not database_url.startswith("sqlite"):
        pytest.skip("on PostgreSQL any number of dispatchers send side by side")
    first, second = make_dispatcher(), make_dispatcher()
    first_stop, second_stop = threading.Event(), threading.Event()
    first_thread = threading.Thread(target=first.run, args=(first_stop,))
    second_thread = threading.Thread(target=second.run, args=(second_stop,))
    first_thread.start()
    try:
        queue_texts(engine, 5)
        assert wait_until(lambda: first.stats.sent == 5, timeout=5)
        second_thread.start()  # stands by: the first one holds the database's dispatcher lock
        queue_texts(engine, 5)
        assert wait_until(lambda: first.stats.sent == 10, timeout=5)
        assert second.stats.sent == 0

        first_stop.set()
        first_thread.join(5)
        queue_texts(engine, 5)
        assert wait_until(lambda: second.stats.sent == 5, timeout=5)
    finally:
        first_stop.set()
        second_stop.set()
        first_thread.join(5)
        second_thread.join(5)
    assert len(fake.delivered()) == 15 and set(fake.delivered().values()) == {1}


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
    stop = threading.Event()
    thread = threading.Thread(target=dispatcher.run, args=(stop,))
    thread.start()
    try:
        assert wait_until(lambda: dispatcher.stats.sent == 4, timeout=10)
        [later] = queue_texts(engine, 1, recipients=[wa_id(99)])
        assert wait_until(lambda: dispatcher.stats.sent == 5, timeout=10)  # still sending
        assert thread.is_alive()
    finally:
        stop.set()
        thread.join(10)
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
    dispatcher = make_dispatcher(lease=timedelta(seconds=1), settle_interval=1.0)

    dispatcher.drain()

    stored = messages(engine, queued)
    assert [stored[q.message_id].status for q in queued] == ["queued"] + ["sent"] * 4
    [held] = outbox(engine)
    assert held.message_id == queued[0].message_id and held.claimed_by  # left to its lease

    time.sleep(1.1)
    dispatcher.drain()  # the lease is over: sent again (at least once), settled this time
    assert messages(engine, queued)[queued[0].message_id].status == "sent"
    assert outbox(engine) == []
    assert fake.delivered()[queued[0].marker] == 2
