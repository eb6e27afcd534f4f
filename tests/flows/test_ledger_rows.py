"""C12 and C13 for every path that writes the ledger: each row carries the time of the message
(or Meta's signal) that made it, not the time it happened to be processed, and the text and
source of what the person answered."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import pytest

from flows.catalog import Catalog
from flows.dialogue import marketing_preference, meta_refusal
from flows.model import DialogueState, RequestedOptIn, Stage, StepResult
from flows.policy import (
    CONFIRM_TEXT,
    META_OPT_OUT_TEXT,
    META_REFUSAL_OPT_OUT_TEXT,
    ConsentSource,
)
from flows.signals import DOI_NO, DOI_YES

from .conftest import BOTH, NOW, ChatFactory, asked, stop_asked, subscribed

# Meta's timestamp of the message: earlier than the moment it is processed (NOW).
SENT = NOW - timedelta(seconds=7)
PAGE_TEXT = "Tick what you would like from Nimbus Bakery on WhatsApp"


def _choosing(chat: ChatFactory):  # type: ignore[no-untyped-def]
    c = asked(chat)
    c.tap("optin:choose")
    return c


def _awaiting(chat: ChatFactory, **state: object):  # type: ignore[no-untyped-def]
    return chat(
        DialogueState(
            granted=frozenset({"offers"}), awaiting_confirmation=frozenset({"offers"}), **state
        )  # type: ignore[arg-type]
    )


SCENARIOS: dict[str, Callable[[ChatFactory], StepResult]] = {
    "yes to all": lambda chat: asked(chat).tap("optin:yes", timestamp=SENT),
    "no to all": lambda chat: asked(chat).tap("optin:no", timestamp=SENT),
    "yes to a category": lambda chat: _choosing(chat).tap("cat:orders:yes", timestamp=SENT),
    "no to a category": lambda chat: _choosing(chat).tap("cat:orders:no", timestamp=SENT),
    "STOP": lambda chat: subscribed(chat).send("STOP", timestamp=SENT),
    "STOP offers": lambda chat: subscribed(chat).send("STOP offers", timestamp=SENT),
    "a stop in own words": lambda chat: subscribed(chat).send("remove me", timestamp=SENT),
    "stopask:all": lambda chat: stop_asked(chat).tap("stopask:all", timestamp=SENT),
    "stopask:offers": lambda chat: stop_asked(chat).tap("stopask:offers", timestamp=SENT),
    "Stop promotions": lambda chat: subscribed(chat).tap(
        "Stop promotions", text="Stop promotions", timestamp=SENT
    ),
    "doi:yes": lambda chat: _awaiting(chat).tap(DOI_YES, text="Yes", timestamp=SENT),
    "doi:no": lambda chat: _awaiting(chat).tap(DOI_NO, text="No", timestamp=SENT),
}


@pytest.mark.parametrize("scenario", list(SCENARIOS))
def test_c12_every_row_carries_the_time_of_the_message_that_made_it(
    scenario: str, chat: ChatFactory
) -> None:
    result = SCENARIOS[scenario](chat)
    assert result.changes, "the scenario must write the ledger"
    assert {change.occurred_at for change in result.changes} == {SENT}


def test_c13_a_131050_refusal_withdraws_granted_marketing_with_metas_words(
    catalog: Catalog,
) -> None:
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=BOTH)
    evidence = {"refused_wamid": "wamid.OUT.1"}
    result = meta_refusal(state, catalog, SENT, evidence)
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == ("offers", False, ConsentSource.META)
    assert change.text == META_REFUSAL_OPT_OUT_TEXT
    assert (change.occurred_at, change.evidence) == (SENT, evidence)
    assert result.state.granted == frozenset({"orders"})
    assert result.state.stage is Stage.SUBSCRIBED  # order updates still go
    assert result.replies == ()  # Meta told the person, not us


def test_c13_metas_preference_stop_is_recorded_as_the_preference_not_as_a_refusal(
    catalog: Catalog,
) -> None:
    state = DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"offers"}))
    result = marketing_preference(state, " Stop ", catalog, SENT, {})
    (change,) = result.changes
    assert (change.text, change.occurred_at) == (META_OPT_OUT_TEXT, SENT)
    assert result.state.stage is Stage.DECLINED  # nothing left: settled as a decline


def test_c28_doi_yes_confirms_what_the_business_reported_and_grants_the_web_choice(
    chat: ChatFactory,
) -> None:
    web = RequestedOptIn(categories=("orders",), text=PAGE_TEXT, evidence={"client": "c1"})
    c = _awaiting(chat, requested=web)
    result = c.tap(DOI_YES, text="Yes", timestamp=SENT)
    rows = {(ch.category, ch.source, ch.text) for ch in result.changes}
    assert rows == {
        ("offers", ConsentSource.WHATSAPP, CONFIRM_TEXT),
        ("orders", ConsentSource.WEB, PAGE_TEXT),
    }
    assert all(ch.granted and ch.occurred_at == SENT for ch in result.changes)
    assert c.state.granted == BOTH
