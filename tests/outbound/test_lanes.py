"""Lanes: one recipient's messages leave in order, and a paced recipient holds back no one else."""

from __future__ import annotations

import itertools
import threading
import time

import pytest
from sqlalchemy.engine import Engine

import bot.outbound.settle
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import (
    MakeDispatcher,
    outbox,
    queue_texts,
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
