"""Prompts retired by a withdrawal (C23) and verified evidence (C24)."""

from __future__ import annotations

from dataclasses import replace

from flows.catalog import Catalog
from flows.render import render_prompt

from .conftest import BOTH, NOW, ChatFactory, asked, choosing, purposes, subscribed

# --- C23: a withdrawal retires every prompt shown before it ---------------------------------------


def test_c23_stop_category_retires_the_open_prompt(chat: ChatFactory) -> None:
    c = asked(chat)
    c.send("stop offers")
    typed = c.send("yes")  # to the prompt shown before the withdrawal
    assert typed.changes == ()
    assert purposes(typed) == ["prompt"]  # the current one, shown now
    assert c.tap("optin:yes", context_wamid=c.sent[0][0], context_sent_at=NOW).changes == ()
    assert {ch.category for ch in c.tap("optin:yes").changes} == BOTH


def test_c23_a_withdrawal_while_choosing_retires_the_category_question(
    chat: ChatFactory,
) -> None:
    c = choosing(chat)  # orders granted, offers being asked
    c.send("stop orders")
    result = c.send("yes")
    assert result.changes == ()
    assert [b.id for b in result.replies[0].buttons] == ["cat:offers:yes", "cat:offers:no"]
    assert [(ch.category, ch.granted) for ch in c.send("yes").changes] == [("offers", True)]


# --- C24: evidence is verified -------------------------------------------------------------------


def test_c24_a_tap_on_a_message_we_cannot_show_we_sent_grants_nothing(
    chat: ChatFactory, catalog: Catalog
) -> None:
    c = asked(chat)
    version = render_prompt(catalog, "en").text_version
    # Meta reports a context with the current prompt's wording, but it is not among the
    # messages we sent this contact: no context_sent_at.
    result = c.tap(
        "optin:yes",
        context_wamid="wamid.NOT-OURS",
        context_text_version=version,
        context_sent_at=None,
    )
    assert result.changes == ()
    assert purposes(result) == ["prompt"]


def test_c24_a_stop_quoting_a_message_we_did_not_send_cites_only_itself(
    chat: ChatFactory,
) -> None:
    c = subscribed(chat)
    result = c.send("STOP", context_wamid="wamid.NOT-OURS")
    assert c.last_in is not None
    assert all(ch.evidence == {"reply_wamid": c.last_in.wamid} for ch in result.changes)


def test_c24_a_typed_answer_before_the_prompt_went_out_cites_it_by_our_own_id(
    chat: ChatFactory,
) -> None:
    c = asked(chat)
    assert c.state.last_question is not None
    queued = replace(c.state.last_question, wamid=None, message_id="msg-1")
    c.state = replace(c.state, last_question=queued)
    result = c.send("yes")
    assert c.last_in is not None
    assert result.changes[0].evidence == {
        "reply_wamid": c.last_in.wamid,
        "prompt_message_id": "msg-1",
    }


def test_c24_a_typed_answer_when_no_question_went_out_is_not_consent(chat: ChatFactory) -> None:
    c = asked(chat)
    c.state = replace(c.state, last_question=None)
    assert c.send("yes").changes == ()
