"""The preferences form on the wire: Meta's flow message, and the Flow JSON it opens."""

from __future__ import annotations

from dataclasses import replace

import pytest

from bot.graph.console import render
from bot.graph.forms import flow_json, flow_payload, offered_in
from bot.graph.payloads import MessageLimitError
from flows.model import Form, FormChoice

TO = "15551231234"
FORM = Form(
    cta="Change my choices",
    heading="Your choices",
    intro="Tick the messages you would like Nimbus Bakery to send you here on WhatsApp.",
    label="Messages you receive",
    submit="Save",
    choices=(
        FormChoice(id="orders", title="Order updates", description="Shipping and delivery news"),
        FormChoice(id="offers", title="Offers", description="Discounts and new products"),
    ),
    ticked=("orders",),
)


def test_the_flow_message_is_metas_shape() -> None:
    payload = flow_payload(TO, "Tap below.", FORM, flow_id="1234567890", token="form.abc")
    assert payload["messaging_product"] == "whatsapp" and payload["to"] == TO
    assert payload["type"] == "interactive"
    assert payload["interactive"]["type"] == "flow"
    assert payload["interactive"]["body"] == {"text": "Tap below."}
    assert payload["interactive"]["action"]["name"] == "flow"
    parameters = payload["interactive"]["action"]["parameters"]
    assert {k: v for k, v in parameters.items() if k != "flow_action_payload"} == {
        "flow_message_version": "3",
        "flow_token": "form.abc",
        "flow_id": "1234567890",
        "flow_cta": "Change my choices",
        "flow_action": "navigate",
    }
    opened = parameters["flow_action_payload"]
    assert opened["screen"] == "PREFERENCES"
    assert opened["data"]["ticked"] == ["orders"]
    assert offered_in(payload) == ("orders", "offers")


def test_a_user_id_is_addressed_in_recipient() -> None:
    payload = flow_payload("US.13491208655302741918", "b", FORM, flow_id="1", token="t")
    assert "to" not in payload and payload["recipient"] == "US.13491208655302741918"


def test_every_field_the_message_fills_is_declared_by_the_flow_json() -> None:
    sent = flow_payload(TO, "b", FORM, flow_id="1", token="t")
    data = sent["interactive"]["action"]["parameters"]["flow_action_payload"]["data"]
    (screen,) = flow_json(FORM, title="Nimbus Bakery")["screens"]
    assert set(data) == set(screen["data"])
    assert all(screen["data"][key]["__example__"] == value for key, value in data.items())


@pytest.mark.parametrize(
    "form",
    [
        replace(FORM, cta="Change all of my choices now"),  # Meta's button: 20 characters
        replace(FORM, label="The messages that you receive from us"),  # a label: 30
        replace(FORM, choices=(FormChoice(id="x", title="T" * 31, description="d"),)),
        replace(FORM, choices=()),
    ],
)
def test_a_form_meta_would_refuse_is_refused_before_it_is_queued(form: Form) -> None:
    with pytest.raises(MessageLimitError):
        flow_payload(TO, "b", form, flow_id="1", token="t")


@pytest.mark.parametrize("logged", [None, {}, {"interactive": {"action": []}}, {"type": "text"}])
def test_no_categories_are_read_from_anything_but_a_form(logged: object) -> None:
    assert offered_in(logged) == ()  # type: ignore[arg-type]


def test_the_console_shows_the_form_with_its_boxes() -> None:
    lines = render(flow_payload(TO, "Tap below.", FORM, flow_id="1234567890", token="t"))
    assert lines == [
        "Tap below.",
        "  ▸ Change my choices [flow 1234567890]",
        "    Your choices",
        "    ☑ Order updates [orders]",
        "    ☐ Offers [offers]",
    ]
