"""The consent policy as pure functions: the send decision and the ledger rows (C07, C12-C25)."""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from flows.policy import (
    ConsentSource,
    Outgoing,
    Purpose,
    Recipient,
    Refusal,
    decisions,
    send_refusal,
    withdrawals,
)
from flows.versioning import text_version

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)
MARKETING = frozenset({"offers"})


def decide(message: Outgoing, recipient: Recipient) -> Refusal | None:
    return send_refusal(message, recipient, marketing=MARKETING, now=NOW)


def granted(*categories: str, **facts) -> Recipient:  # type: ignore[no-untyped-def]
    return Recipient(
        known=True,
        sendable=frozenset(categories),
        last_inbound_at=NOW - timedelta(hours=1),
        **facts,
    )


def business(category: str | None = "orders", *, free_text: bool = False) -> Outgoing:
    return Outgoing(category=category, purpose=Purpose.BUSINESS, free_text=free_text)


def test_c14_a_category_send_needs_that_category_granted():
    assert decide(business("orders"), granted("orders")) is None
    assert decide(business("offers"), granted("orders")) is Refusal.NO_CONSENT
    assert decide(business("orders"), Recipient(known=False)) is Refusal.UNKNOWN_CONTACT


def test_c14_a_grant_awaiting_its_double_opt_in_is_not_yet_sendable():
    waiting = granted(awaiting_confirmation=frozenset({"offers"}))
    assert decide(business("offers"), waiting) is Refusal.AWAITING_CONFIRMATION


def test_c15_free_text_only_within_24_hours_of_their_last_message_templates_any_time():
    stale = Recipient(
        known=True, sendable=frozenset({"orders"}), last_inbound_at=NOW - timedelta(hours=25)
    )
    assert decide(business(free_text=True), stale) is Refusal.OUTSIDE_SERVICE_WINDOW
    assert decide(business(free_text=False), stale) is None
    assert decide(business(free_text=True), granted("orders")) is None
    never_wrote = Recipient(known=True, sendable=frozenset({"orders"}))
    assert decide(business(free_text=True), never_wrote) is Refusal.OUTSIDE_SERVICE_WINDOW


def test_c18_nothing_the_business_starts_goes_to_a_suppressed_number():
    erased = Recipient(known=False, suppressed=True)
    assert decide(business(), erased) is Refusal.SUPPRESSED
    confirm = Outgoing(category=None, purpose=Purpose.DOUBLE_OPT_IN)
    assert decide(confirm, granted("orders", suppressed=True)) is Refusal.SUPPRESSED
    unlabelled = Outgoing(category=None, purpose=None)  # queued without a purpose: held too
    assert decide(unlabelled, granted(suppressed=True)) is Refusal.SUPPRESSED


@pytest.mark.parametrize("purpose", [Purpose.PROMPT, Purpose.HELP, Purpose.STOP])
def test_c25_an_erased_person_who_writes_again_is_answered(purpose):
    wrote_again = Recipient(known=True, suppressed=True)
    assert decide(Outgoing(category=None, purpose=purpose), wrote_again) is None


def test_metas_marketing_limit_holds_marketing_categories_only_until_it_ends():
    held = granted("orders", "offers", marketing_held_until=NOW + timedelta(hours=3))
    assert decide(business("offers"), held) is Refusal.MARKETING_LIMITED
    assert decide(business("orders"), held) is None
    over = granted("offers", marketing_held_until=NOW - timedelta(seconds=1))
    assert decide(business("offers"), over) is None


def test_c12_a_decision_is_one_row_per_category_with_its_text_version_and_evidence():
    rows = decisions(
        ["orders", "offers"],
        granted=True,
        source=ConsentSource.WEB,
        text="Tick to receive offers",
        occurred_at=NOW,
        evidence={"form": "signup"},
    )
    assert [r.category for r in rows] == ["orders", "offers"]
    assert {r.text_version for r in rows} == {text_version("Tick to receive offers")}
    assert all(r.granted and r.source is ConsentSource.WEB and r.occurred_at == NOW for r in rows)
    assert all(r.evidence == {"form": "signup"} for r in rows)


def test_c07_a_withdrawal_writes_rows_only_for_what_is_granted_now():
    rows = withdrawals(
        {"orders"},
        ["orders", "offers"],
        source=ConsentSource.WHATSAPP,
        text="STOP",
        occurred_at=NOW,
        evidence={},
    )
    assert [(r.category, r.granted) for r in rows] == [("orders", False)]
    assert (
        withdrawals(
            set(),
            ["orders"],
            source=ConsentSource.WHATSAPP,
            text="STOP",
            occurred_at=NOW,
            evidence={},
        )
        == ()
    )


def test_c15_free_text_at_exactly_24_hours_is_still_within_the_window():
    # "More than 24 h" is refused (C15): the 24th hour itself is not more.
    at_the_edge = Recipient(
        known=True, sendable=frozenset({"orders"}), last_inbound_at=NOW - timedelta(hours=24)
    )
    assert decide(business(free_text=True), at_the_edge) is None
    just_over = replace(at_the_edge, last_inbound_at=NOW - timedelta(hours=24, microseconds=1))
    assert decide(business(free_text=True), just_over) is Refusal.OUTSIDE_SERVICE_WINDOW


def test_metas_marketing_limit_is_over_at_the_moment_it_ends():
    ends_now = granted("offers", marketing_held_until=NOW)
    assert decide(business("offers"), ends_now) is None
    later = granted("offers", marketing_held_until=NOW + timedelta(microseconds=1))
    assert decide(business("offers"), later) is Refusal.MARKETING_LIMITED


def test_c12_a_texts_version_is_the_same_in_every_release():
    # Ledger rows written years apart must compare: the version is a fixed function of the text.
    assert text_version("Hello") == "185f8db32271fe25"
    assert text_version("مرحبا") == hashlib.sha256("مرحبا".encode()).hexdigest()[:16]
