"""PREFERENCES as a WhatsApp Flow, end to end: signed bodies shaped like the fixtures in, the real
dialogue, ledger, outbox and Graph client out, with Meta's Graph API answered by `responses`."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import requests
import responses
from flask import Flask

from bot.dev import simulate
from bot.dev.simulate_kinds import flow_reply_body
from bot.graph.client import GraphClient
from bot.wiring.services import services
from tests.conftest import ROOT, Api
from tests.conversation import PROMPT_BUTTONS, WA_ID, consents, ledger

FLOW_ID = "1234567890123456"
API_URL = "https://graph.example.test/v23.0"
OTHER_WA_ID = "971501234567"


@pytest.fixture
def app_config(app_config: dict[str, str], tmp_path: Path) -> dict[str, str]:
    """optin.toml with the preferences Flow published, and a real Graph client."""
    path = tmp_path / "optin.toml"
    text = (ROOT / "optin.toml").read_text(encoding="utf-8")
    path.write_text(text + f'\n[preferences_flow]\nflow_id = "{FLOW_ID}"\n', encoding="utf-8")
    return {
        **app_config,
        "OPTIN_CONFIG": str(path),
        "WHATSAPP_ACCESS_TOKEN": "test-access-token",
        "WHATSAPP_API_URL": API_URL,
    }


class Graph:
    """Meta's messages endpoint: a wamid for each message, success for read receipts."""

    def __init__(self, mock: responses.RequestsMock) -> None:
        self.sent: list[tuple[dict[str, Any], str]] = []  # (payload, wamid)
        mock.add_callback(
            responses.POST, re.compile(rf"{re.escape(API_URL)}/\d+/messages"), self.answer
        )

    def answer(self, request: Any) -> tuple[int, dict[str, str], str]:
        payload = json.loads(request.body)
        if payload.get("status") == "read":
            return 200, {}, json.dumps({"success": True})
        wamid = f"wamid.OUT{len(self.sent) + 1:04d}"
        self.sent.append((payload, wamid))
        return 200, {}, json.dumps({"messaging_product": "whatsapp", "messages": [{"id": wamid}]})


@pytest.fixture
def graph() -> Iterator[Graph]:
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mock:
        yield Graph(mock)


class Customer:
    """One person writing to the bot; what they receive is what went to Meta for them."""

    def __init__(self, app: Flask, graph: Graph, wa_id: str) -> None:
        self.app, self.graph, self.wa_id = app, graph, wa_id
        self.client = app.test_client()
        # The app's Graph client, over a requests session so that `responses` answers it (the
        # app's own posts through urllib3 directly, which `responses` does not see).
        http = requests.Session()
        token = services(app).settings.access_token or ""
        transport = GraphClient(http, access_token=token, base_url=API_URL)
        self.dispatcher = services(app).dispatcher(concurrency=1, transport=transport)

    def post(self, body: bytes) -> list[tuple[dict[str, Any], str]]:
        secret = services(self.app).settings.app_secret
        signature = simulate.sign(body, secret)
        response = self.client.post(
            "/webhook", data=body, headers={"X-Hub-Signature-256": signature}
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        already = len(self.graph.sent)
        self.dispatcher.drain()
        return [(p, w) for p, w in self.graph.sent[already:] if p.get("to") == self.wa_id]

    def say(self, text: str) -> list[tuple[dict[str, Any], str]]:
        return self.post(simulate.text_body(wa_id=self.wa_id, text=text))

    def opt_in(self, api: Api) -> None:
        ((prompt, wamid),) = self.say("hello")
        shown = [b["reply"]["id"] for b in prompt["interactive"]["action"]["buttons"]]
        assert shown == PROMPT_BUTTONS
        tap = simulate.button_reply_body(
            wa_id=self.wa_id, reply_id="optin:yes", title="Yes, all", context_wamid=wamid
        )
        self.post(tap)
        assert consents(api, self.wa_id) == {"orders": True, "offers": True}

    def open_form(self) -> tuple[dict[str, Any], str]:
        ((form, wamid),) = self.say("PREFERENCES")
        return form, wamid

    def answer(self, token: str, ticked: list[str], **fields: Any) -> bytes:
        response = {"flow_token": token, "form": "preferences", "categories": ticked}
        return flow_reply_body(wa_id=self.wa_id, response=response, **fields)


def parameters(payload: dict[str, Any]) -> dict[str, Any]:
    return payload["interactive"]["action"]["parameters"]


@pytest.fixture
def customer(app: Flask, graph: Graph) -> Customer:
    return Customer(app, graph, WA_ID)


def test_preferences_sends_the_form_with_the_current_choices_ticked(customer, api):
    customer.opt_in(api)
    customer.say("STOP offers")
    form, _ = customer.open_form()
    assert (form["type"], form["interactive"]["type"]) == ("interactive", "flow")
    assert form["interactive"]["action"]["name"] == "flow"
    sent = parameters(form)
    assert sent["flow_message_version"] == "3"
    assert (sent["flow_id"], sent["flow_action"]) == (FLOW_ID, "navigate")
    assert sent["flow_token"].startswith("form.")
    screen = sent["flow_action_payload"]
    assert screen["screen"] == "PREFERENCES"
    assert [c["id"] for c in screen["data"]["choices"]] == ["orders", "offers"]
    assert screen["data"]["ticked"] == ["orders"]
    assert "Nimbus Bakery" in screen["data"]["intro"] and "STOP" in screen["data"]["intro"]


def test_c04_a_flow_answer_unticking_a_category_withdraws_it_with_the_form_as_evidence(
    customer, api
):
    customer.opt_in(api)
    form, form_wamid = customer.open_form()
    token = parameters(form)["flow_token"]
    replies = customer.post(
        customer.answer(token, ["orders"], wamid="wamid.FLOWANSWER1", context_wamid=form_wamid)
    )
    assert consents(api) == {"orders": True, "offers": False}
    row = ledger(api)[-1]
    assert (row["category"], row["granted"], row["source"]) == ("offers", False, "whatsapp")
    shown = next(
        m
        for m in api.get(f"/contacts/{WA_ID}/messages").json["messages"]
        if m["wamid"] == form_wamid
    )
    assert row["text"] == shown["text"] and "Offers: Discounts and new products" in row["text"]
    assert row["evidence"] == {
        "reply_wamid": "wamid.FLOWANSWER1",
        "prompt_wamid": form_wamid,
        "flow_token": token,
        "form_version": row["text_version"],
    }
    ((saved, _),) = replies
    assert "Offers: off" in saved["text"]["body"]


def test_c20_a_redelivered_flow_answer_has_one_effect(customer, api):
    customer.opt_in(api)
    form, _ = customer.open_form()
    body = customer.answer(parameters(form)["flow_token"], [], wamid="wamid.FLOWANSWER2")
    assert len(customer.post(body)) == 1
    assert customer.post(body) == []
    withdrawals = [row for row in ledger(api) if not row["granted"]]
    assert sorted(row["category"] for row in withdrawals) == ["offers", "orders"]


def test_c02_a_flow_answer_ticking_a_category_grants_it(customer, api):
    customer.opt_in(api)
    customer.say("STOP offers")
    form, _ = customer.open_form()
    customer.post(customer.answer(parameters(form)["flow_token"], ["orders", "offers"]))
    assert consents(api) == {"orders": True, "offers": True}
    row = ledger(api)[-1]
    assert (row["category"], row["granted"]) == ("offers", True)


def test_c24_a_flow_answer_with_an_unknown_or_foreign_token_changes_nothing(
    app, graph, customer, api
):
    other = Customer(app, graph, OTHER_WA_ID)
    customer.opt_in(api)
    other.opt_in(api)
    theirs, _ = other.open_form()
    before = (ledger(api), ledger(api, OTHER_WA_ID))
    foreign = customer.answer(parameters(theirs)["flow_token"], [])
    unknown = customer.answer("form.0123456789abcdef0123456789abcdef", [])
    not_a_form = customer.answer("another-business-flow", [])
    for body in (foreign, unknown, not_a_form):
        assert customer.post(body) == []
    assert (ledger(api), ledger(api, OTHER_WA_ID)) == before
    assert consents(api) == consents(api, OTHER_WA_ID) == {"orders": True, "offers": True}
