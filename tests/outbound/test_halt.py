"""The halt state: what each reason holds back, and which reasons end by themselves."""

from __future__ import annotations

import threading

import pytest

from bot.outbound.halt import Halt, HaltState


def test_a_new_state_claims_and_sends() -> None:
    halt = HaltState()
    assert halt.reason is None
    assert halt.claims() and halt.sends() and not halt.stopping()


def test_a_rejected_token_holds_back_claims_and_sends_until_everything_settled() -> None:
    halt = HaltState()
    halt.halt(Halt.TOKEN_REJECTED)
    assert not halt.claims() and not halt.sends()

    halt.all_settled()
    assert halt.reason is None and halt.claims() and halt.sends()


def test_an_exiting_interpreter_holds_back_claims_only_and_for_good() -> None:
    halt = HaltState()
    halt.halt(Halt.EXITING)
    assert not halt.claims() and halt.sends()

    halt.all_settled()
    assert halt.reason is Halt.EXITING


# A wait that the stop did not end would take its full minute: the timeout fails it first.
@pytest.mark.timeout(30)
def test_the_owners_stop_event_holds_back_everything_and_wakes_waits() -> None:
    stop = threading.Event()
    halt = HaltState()
    halt.watch(stop)
    assert halt.claims()
    woke: list[bool] = []
    waiting = threading.Thread(target=lambda: woke.append(halt.wait(60.0)))
    waiting.start()

    stop.set()
    halt.all_settled()
    assert halt.reason is Halt.STOPPING and halt.stopping()
    assert not halt.claims() and not halt.sends()
    waiting.join()
    assert woke == [True]
    assert halt.wait(60.0)  # and a wait once stopping ends at once


def test_the_most_restrictive_reason_wins() -> None:
    halt = HaltState()
    halt.halt(Halt.TOKEN_REJECTED)
    halt.halt(Halt.EXITING)
    assert halt.reason is Halt.TOKEN_REJECTED
    assert not halt.sends()
