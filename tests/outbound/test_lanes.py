"""Lanes: one recipient's messages leave in order, and a paced recipient holds back no one else."""

from __future__ import annotations

import itertools

from sqlalchemy.engine import Engine

from bot.outbound.settle import PAIR_RATE_PAUSE_SECONDS
from storage.ratelimit import MemoryRateLimiter
from tests.clock import ManualClock
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    MakeDispatcher,
    outbox,
    queue_texts,
    running,
    wa_id,
)


def test_one_recipients_messages_leave_in_the_order_queued(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    queued = queue_texts(engine, 12, recipients=[wa_id(1), wa_id(2)])

    make_dispatcher(concurrency=8).drain()

    for to in (wa_id(1), wa_id(2)):
        expected = [q.marker for q in queued if q.to == to]
        assert [r.text for r in fake.attempts_to(to)] == expected


def test_rows_claimed_later_for_a_recipient_being_sent_to_wait_their_turn(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher
) -> None:
    """Claimed a few at a time, one recipient's messages still leave one after another."""
    to = wa_id(1)
    meta = fake.hold(to)  # each answer waits until the test lets it go
    queued = queue_texts(engine, 6, recipients=[to])
    dispatcher = make_dispatcher(batch_size=2, concurrency=4)
    with running(dispatcher):
        for answered in range(6):
            assert meta.wait_held(1)
            # Still the only one: the rest of the lane waits for Meta's answer. (Three threads
            # are free to send them, so a lane that did not wait would show here.)
            assert meta.held == 1 and len(fake.attempts_to(to)) == answered
            meta.release(1)
            assert fake.wait_for(lambda f, n=answered + 1: len(f.deliveries()) == n)
    attempts = fake.attempts_to(to)
    assert [r.text for r in attempts] == [q.marker for q in queued]
    # Each left only after Meta had answered the one before.
    for earlier, later in itertools.pairwise(attempts):
        assert later.at >= earlier.answered


def test_after_131056_the_recipient_is_paced_while_others_continue(
    engine: Engine, fake: FakeGraph, make_dispatcher: MakeDispatcher, no_backoff: None
) -> None:
    paced, other = wa_id(1), wa_id(2)
    fake.force(paced, 131056, times=1)
    first = queue_texts(engine, 4, recipients=[paced, other])  # paced, other, paced, other
    # Meta's pause is timed on a clock the test moves: the outbox's due times and the
    # limiter's pacing both read it.
    clock = ManualClock()
    dispatcher = make_dispatcher(
        clock=clock.utcnow, limiter=MemoryRateLimiter(1000, clock=clock), sleep=clock.sleep
    )

    dispatcher.drain()
    later = queue_texts(engine, 2, recipients=[paced, other], now=clock.utcnow())
    dispatcher.drain()

    # The other recipient got all of theirs; the paced one nothing after Meta's 131056, not
    # even the message queued behind it in the same batch.
    expected_other = [first[1].marker, first[3].marker, later[1].marker]
    assert [r.text for r in fake.attempts_to(other)] == expected_other
    assert [r.outcome for r in fake.attempts_to(paced)] == ["error 131056"]

    # Not a moment before Meta's pause is over...
    clock.advance(PAIR_RATE_PAUSE_SECONDS - 0.001)
    assert dispatcher.drain() == 0
    assert len(fake.attempts_to(paced)) == 1
    # ...and then at once, in the order queued.
    clock.advance(0.001)
    dispatcher.drain()

    assert outbox(engine) == []
    attempts = fake.attempts_to(paced)
    assert [r.outcome for r in attempts] == ["error 131056"] + ["delivered"] * 3
    assert [r.text for r in attempts[1:]] == [first[0].marker, first[2].marker, later[0].marker]
    assert set(fake.delivered().values()) == {1}
