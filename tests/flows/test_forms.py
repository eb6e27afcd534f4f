"""PREFERENCES as a WhatsApp Flow form: what it shows, and what its answer changes."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import timedelta

import pytest

from flows.catalog import Catalog, PreferencesFlow
from flows.forms import FORM_KEY, FORM_NAME, TICKED_KEY, ticked_in
from flows.model import DialogueState, Inbound, InboundKind, Reply, SentForm, Stage, StepResult

from .conftest import BOTH, Chat, ChatFactory, declined, purposes, stopped, subscribed


@pytest.fixture
def flow_catalog(catalog: Catalog) -> Catalog:
    return replace(catalog, preferences_flow=PreferencesFlow(flow_id="1234567890"))


@pytest.fixture
def form_chat(chat: ChatFactory, flow_catalog: Catalog) -> ChatFactory:
    def make(state: DialogueState | None = None, **fields: object) -> Chat:
        return chat(state, catalog=flow_catalog, **fields)

    return make


def last_form(c: Chat) -> tuple[str, Reply]:
    return next((w, r) for w, r in reversed(c.sent) if r.form is not None)


def answer(c: Chat, ticked: set[str], *, form: SentForm | None = None, **fields: object):
    """Send the last form back with these boxes ticked, as the responder hands it to step()."""
    if form is None:
        wamid, reply = last_form(c)
        assert reply.form is not None
        form = SentForm(
            token="form.1",
            text=reply.shown_text,
            text_version=reply.text_version,
            sent_at=c.sent_at[wamid],
            offered=tuple(choice.id for choice in reply.form.choices),
            wamid=wamid,
        )
    values: dict[str, object] = {"timestamp": c.now, "form": form, "form_ticked": ticked}
    values.update(fields)
    event = Inbound(kind=InboundKind.FLOW, wamid=c._wamid("in"), **values)  # type: ignore[arg-type]
    return c.deliver(event)


def rows(result: StepResult) -> list[tuple[str, bool]]:
    return [(change.category, change.granted) for change in result.changes]


def test_preferences_opens_the_form_with_the_granted_categories_ticked(
    form_chat: ChatFactory,
) -> None:
    c = subscribed(form_chat)
    c.send("stop offers")
    result = c.send("PREFERENCES")
    (reply,) = result.replies
    assert reply.purpose == "preferences_form" and reply.form is not None
    assert reply.form.ticked == ("orders",)
    assert [choice.id for choice in reply.form.choices] == ["orders", "offers"]
    # The form names the company, WhatsApp, each category with its description, and STOP (C01).
    shown = reply.shown_text
    for words in ("Nimbus Bakery", "WhatsApp", "STOP", "Offers: Discounts and new products"):
        assert words in shown
    assert result.changes == ()


def test_without_the_setting_preferences_keeps_its_button(chat: ChatFactory) -> None:
    result = subscribed(chat).send("PREFERENCES")
    assert purposes(result) == ["preferences"] and result.replies[0].form is None


def test_the_form_is_in_the_contacts_language(form_chat: ChatFactory) -> None:
    c = subscribed(form_chat, "ar")
    (reply,) = c.send("الإعدادات").replies
    assert reply.form is not None and reply.language == "ar"
    assert reply.form.choices[1].title == "العروض"


def test_c04_unticking_a_category_withdraws_it_alone_with_the_form_as_evidence(
    form_chat: ChatFactory,
) -> None:
    c = subscribed(form_chat)
    c.send("PREFERENCES")
    form_wamid, form = last_form(c)
    result = answer(c, {"orders"})
    assert rows(result) == [("offers", False)]
    (change,) = result.changes
    assert change.text == form.shown_text and change.text_version == form.text_version
    assert change.evidence == {
        "reply_wamid": c.last_in.wamid,  # type: ignore[union-attr]
        "prompt_wamid": form_wamid,
        "flow_token": "form.1",
        "form_version": form.text_version,
    }
    assert c.state.granted == {"orders"} and c.state.stage is Stage.SUBSCRIBED
    # The confirmation retires every question sent before it (C23).
    assert purposes(result) == ["preferences_withdrawn"]


def test_c02_ticking_a_category_on_a_live_form_grants_it(form_chat: ChatFactory) -> None:
    c = declined(form_chat)
    c.send("PREFERENCES")
    result = answer(c, {"offers"})
    assert rows(result) == [("offers", True)]
    assert c.state.granted == {"offers"} and c.state.stage is Stage.SUBSCRIBED
    assert purposes(result) == ["preferences_saved"]


def test_an_answer_that_changes_nothing_writes_no_row(form_chat: ChatFactory) -> None:
    c = subscribed(form_chat)
    c.send("PREFERENCES")
    result = answer(c, set(BOTH))
    assert result.changes == () and purposes(result) == ["preferences_saved"]


def test_c19_a_tick_on_a_form_worded_otherwise_grants_nothing_but_an_untick_withdraws(
    form_chat: ChatFactory,
) -> None:
    c = subscribed(form_chat)
    c.send("stop offers")
    c.send("PREFERENCES")
    _, reply = last_form(c)
    old = SentForm(
        token="form.old",
        text=reply.shown_text.replace("Discounts", "Deals"),
        text_version="0ld0ld0ld0ld0ld0",
        sent_at=c.now,
        offered=("orders", "offers"),
    )
    result = answer(c, {"offers"}, form=old)
    assert rows(result) == [("orders", False)]
    assert result.changes[0].text == old.text  # quoted as it was shown
    # Nothing granted: the current form is shown instead.
    assert purposes(result) == ["preferences_withdrawn", "preferences_form"]
    assert c.state.granted == frozenset()


def test_c23_a_form_sent_before_a_stop_grants_nothing(form_chat: ChatFactory) -> None:
    c = subscribed(form_chat)
    c.send("PREFERENCES")
    c.send("STOP")
    result = answer(c, set(BOTH))
    assert result.changes == ()
    assert purposes(result) == ["preferences_form"] and c.state.stage is Stage.STOPPED


def test_c02_a_tick_a_day_later_grants_nothing(form_chat: ChatFactory) -> None:
    c = declined(form_chat)
    c.send("PREFERENCES")
    c.wait(timedelta(hours=25))
    result = answer(c, {"orders"})
    assert result.changes == () and purposes(result)[-1] == "preferences_form"


def test_c07_after_stop_an_empty_answer_gets_no_reply(form_chat: ChatFactory) -> None:
    c = stopped(form_chat)
    c.send("PREFERENCES")
    result = answer(c, set())
    assert result.replies == () and result.changes == ()


def test_after_stop_a_tick_on_a_new_form_grants_again(form_chat: ChatFactory) -> None:
    c = stopped(form_chat)
    c.wait(timedelta(minutes=1))
    c.send("PREFERENCES")
    result = answer(c, {"orders"})
    assert rows(result) == [("orders", True)] and c.state.stage is Stage.SUBSCRIBED


def test_a_category_the_form_did_not_offer_is_left_as_it_is(form_chat: ChatFactory) -> None:
    c = subscribed(form_chat)
    c.send("PREFERENCES")
    wamid, reply = last_form(c)
    only_orders = SentForm(
        token="form.2",
        text=reply.shown_text,
        text_version=reply.text_version,
        sent_at=c.sent_at[wamid],
        offered=("orders",),
    )
    result = answer(c, set(), form=only_orders)
    assert rows(result) == [("orders", False)]
    assert c.state.granted == {"offers"}


def test_c31_a_form_answer_in_a_group_changes_nothing(form_chat: ChatFactory) -> None:
    c = subscribed(form_chat)
    c.send("PREFERENCES")
    result = answer(c, set(), in_group=True)
    assert result.changes == () and result.replies == ()


def test_another_flows_answer_changes_nothing(form_chat: ChatFactory) -> None:
    c = subscribed(form_chat)
    c.send("PREFERENCES")
    foreign = Inbound(kind=InboundKind.FLOW, wamid="wamid.other", timestamp=c.now)
    result = c.deliver(foreign)
    assert result.changes == () and result.replies == ()
    # Our form's token, but not our form's fields: not an answer to it either.
    assert answer(c, set(), form_ticked=None).changes == ()
    assert c.state.granted == BOTH


def _fields(**values: object) -> dict[str, str]:
    return {key: json.dumps(value) for key, value in values.items()}


@pytest.mark.parametrize(
    ("fields", "ticked"),
    [
        (_fields(**{FORM_KEY: FORM_NAME, TICKED_KEY: ["orders"]}), {"orders"}),
        (_fields(**{FORM_KEY: FORM_NAME, TICKED_KEY: []}), set()),
        (_fields(**{FORM_KEY: FORM_NAME}), set()),  # nothing ticked may leave the key out
        (_fields(**{FORM_KEY: FORM_NAME, TICKED_KEY: "orders"}), None),
        (_fields(**{FORM_KEY: FORM_NAME, TICKED_KEY: [1]}), None),
        (_fields(orders=True, offers=False), None),  # another Flow's fields
        ({FORM_KEY: "not json"}, None),
    ],
)
def test_reading_the_boxes_ticked(fields: dict[str, str], ticked: set[str] | None) -> None:
    assert ticked_in(fields) == (None if ticked is None else frozenset(ticked))
