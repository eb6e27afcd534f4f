"""What the double opt-in template's taps do, through step(): consent collected off WhatsApp is
granted or withdrawn by the person's own tap (C28), never by an ad (C03)."""

from __future__ import annotations

import pytest

from flows.model import DialogueState, Stage
from flows.policy import CONFIRM_TEXT, DECLINE_TEXT, ConsentSource, Purpose
from flows.signals import DOI_NO, DOI_YES
from flows.versioning import text_version

from .conftest import BOTH, NOW, Chat, ChatFactory, purposes


def awaiting(chat: ChatFactory, stage: Stage = Stage.NEW, **state: object) -> Chat:
    """A contact whose offers were granted off WhatsApp and await the template's tap."""
    values: dict[str, object] = {
        "granted": frozenset({"offers"}),
        "awaiting_confirmation": frozenset({"offers"}),
        **state,
    }
    return chat(DialogueState(stage=stage, **values))  # type: ignore[arg-type]


def test_c28_doi_yes_grants_what_awaits_the_tap_and_says_what_is_granted(
    chat: ChatFactory,
) -> None:
    c = awaiting(chat)
    result = c.tap(DOI_YES, text="Yes", context_wamid="wamid.TEMPLATE", context_sent_at=NOW)
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == (
        "offers",
        True,
        ConsentSource.WHATSAPP,
    )
    assert (change.text, change.text_version) == (CONFIRM_TEXT, text_version(CONFIRM_TEXT))
    assert DOI_YES in change.text
    assert change.occurred_at == NOW
    assert c.last_in is not None
    assert change.evidence == {"reply_wamid": c.last_in.wamid, "prompt_wamid": "wamid.TEMPLATE"}
    (reply,) = result.replies
    assert reply.purpose == Purpose.CONFIRMATION
    assert "Offers" in reply.body and "Order updates" not in reply.body
    assert c.state.granted == frozenset({"offers"})
    assert c.state.awaiting_confirmation == frozenset()
    assert c.state.stage is Stage.NEW  # the tap answers the template, not our dialogue


def test_c28_doi_yes_without_a_quoted_template_records_the_reply_only(chat: ChatFactory) -> None:
    c = awaiting(chat)
    (change,) = c.tap(DOI_YES, text="Yes").changes
    assert c.last_in is not None
    assert change.evidence == {"reply_wamid": c.last_in.wamid}


def test_c24_a_template_we_cannot_show_we_sent_is_not_cited_as_evidence(
    chat: ChatFactory,
) -> None:
    # The tap's context is not among the messages we sent this contact (no context_sent_at).
    c = awaiting(chat)
    (change,) = c.tap(DOI_YES, text="Yes", context_wamid="wamid.SOMEONE-ELSES").changes
    assert c.last_in is not None
    assert change.evidence == {"reply_wamid": c.last_in.wamid}


def test_c28_doi_yes_lists_everything_granted_now_in_the_contacts_language(
    chat: ChatFactory,
) -> None:
    c = awaiting(chat, Stage.SUBSCRIBED, granted=BOTH, language="ar", language_chosen=True)
    result = c.tap(DOI_YES, text="نعم")
    assert [ch.category for ch in result.changes] == ["offers"]
    (reply,) = result.replies
    assert reply.language == "ar"
    assert "العروض" in reply.body and "تحديثات الطلبات" in reply.body


def test_c28_doi_yes_with_nothing_awaiting_records_nothing(chat: ChatFactory) -> None:
    settled = chat(DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"orders"})))
    result = settled.tap(DOI_YES, text="Yes")
    assert result.changes == ()
    assert purposes(result) == ["confirmation"]  # a second tap hears what they receive
    nothing = chat().tap(DOI_YES, text="Yes")
    assert nothing.changes == () and nothing.replies == ()


def test_c28_doi_no_withdraws_what_awaits_the_tap_and_nothing_else(chat: ChatFactory) -> None:
    c = awaiting(chat, Stage.SUBSCRIBED, granted=BOTH)
    result = c.tap(DOI_NO, text="No", context_wamid="wamid.TEMPLATE", context_sent_at=NOW)
    (change,) = result.changes
    assert (change.category, change.granted, change.source) == (
        "offers",
        False,
        ConsentSource.WHATSAPP,
    )
    assert (change.text, change.text_version) == (DECLINE_TEXT, text_version(DECLINE_TEXT))
    assert DOI_NO in change.text
    assert change.evidence["prompt_wamid"] == "wamid.TEMPLATE"
    assert result.replies == ()
    assert c.state.granted == frozenset({"orders"})
    assert c.state.awaiting_confirmation == frozenset()


@pytest.mark.parametrize("stage", list(Stage))
@pytest.mark.parametrize(("payload", "granted"), [(DOI_YES, True), (DOI_NO, False)])
def test_c28_the_taps_settle_what_awaits_them_from_every_stage(
    stage: Stage, payload: str, granted: bool, chat: ChatFactory
) -> None:
    c = awaiting(chat, stage)
    result = c.tap(payload, text="Yes" if granted else "No")
    assert [(ch.category, ch.granted) for ch in result.changes] == [("offers", granted)]
    assert c.state.stage is stage
    assert c.state.awaiting_confirmation == frozenset()


def test_c03_c28_a_doi_no_from_an_ad_is_honoured(chat: ChatFactory) -> None:
    c = awaiting(chat)
    result = c.tap(DOI_NO, text="No", from_ad=True)
    assert [(ch.category, ch.granted) for ch in result.changes] == [("offers", False)]
