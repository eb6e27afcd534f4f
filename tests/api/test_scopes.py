"""Token scopes (C30): a token named with scopes makes only the calls they allow; a bare token
keeps every scope, so deployments from before scopes keep working."""

from __future__ import annotations

import pytest
from flask import Flask
from flask.testing import FlaskClient

from bot.api.auth import OPEN_ENDPOINTS, required_scope
from tests.api.conftest import WA_ID, consent_body, grant, hours_ago, say
from tests.conftest import API_TOKEN

TOKENS = {
    "read": "reader-token-0123456789",
    "send": "sender-token-0123456789",
    "consent": "consent-token-0123456789",
    "erase": "eraser-token-0123456789",
}


@pytest.fixture
def app_config(app_config: dict[str, str]) -> dict[str, str]:
    scoped = ",".join(f"{scope}-app:{scope}:{token}" for scope, token in TOKENS.items())
    return {**app_config, "API_TOKENS": f"{API_TOKEN},{scoped}"}


class Caller:
    """The API as the holder of one token calls it."""

    def __init__(self, client: FlaskClient, token: str) -> None:
        self.client = client
        self.headers = {"Authorization": f"Bearer {token}"}

    def get(self, path: str):
        return self.client.get(f"/api/v1{path}", headers=self.headers)

    def post(self, path: str, body: dict):
        return self.client.post(f"/api/v1{path}", json=body, headers=self.headers)

    def delete(self, path: str):
        return self.client.delete(f"/api/v1{path}", headers=self.headers)


def caller(client: FlaskClient, scope: str) -> Caller:
    return Caller(client, TOKENS[scope])


def assert_refused(response, scope: str) -> None:
    assert response.status_code == 403, response.json
    assert response.json["error"] == "insufficient_scope"
    assert repr(scope) in response.json["message"]
    assert f'scope="{scope}"' in response.headers["WWW-Authenticate"]


def send_body() -> dict:
    return {"to": WA_ID, "category": "orders", "text": "Your order has shipped"}


def test_c30_read_scope_reads_and_changes_nothing(client, api, meta) -> None:
    say(meta, at=hours_ago(1))
    grant(api, categories=["orders"])
    reader = caller(client, "read")
    for path in (
        f"/contacts/{WA_ID}",
        f"/contacts/{WA_ID}/messages",
        f"/contacts/{WA_ID}/consent-events",
        f"/contacts/{WA_ID}/export",
        "/audience?category=orders",
    ):
        assert reader.get(path).status_code == 200, path
    assert reader.get("/messages/no-such-id").status_code == 404  # past the scope check
    assert_refused(reader.post("/messages", send_body()), "send")
    assert_refused(reader.post("/consents", consent_body()), "consent")
    assert_refused(reader.delete(f"/contacts/{WA_ID}"), "erase")
    assert api.get(f"/contacts/{WA_ID}").status_code == 200  # nothing was erased


def test_c30_send_scope_sends_and_reads_nothing(client, api, meta) -> None:
    say(meta, at=hours_ago(1))
    grant(api, categories=["orders"])
    sender = caller(client, "send")
    sent = sender.post("/messages", send_body())
    assert sent.status_code == 202, sent.json
    assert_refused(sender.get(f"/messages/{sent.json['id']}"), "read")
    assert_refused(sender.get(f"/contacts/{WA_ID}"), "read")
    assert_refused(sender.post("/consents", consent_body()), "consent")
    assert_refused(sender.delete(f"/contacts/{WA_ID}"), "erase")


def test_c30_consent_scope_records_consent_and_nothing_else(client, api) -> None:
    recorder = caller(client, "consent")
    assert recorder.post("/consents", consent_body()).status_code == 201
    assert_refused(recorder.get(f"/contacts/{WA_ID}/consent-events"), "read")
    assert_refused(recorder.post("/messages", send_body()), "send")
    assert_refused(recorder.delete(f"/contacts/{WA_ID}"), "erase")
    assert api.get(f"/contacts/{WA_ID}").json["consents"]["offers"]["granted"] is True


def test_c30_erase_scope_erases_and_reads_nothing(client, api) -> None:
    grant(api)
    eraser = caller(client, "erase")
    assert_refused(eraser.get(f"/contacts/{WA_ID}/export"), "read")
    assert_refused(eraser.post("/consents", consent_body()), "consent")
    assert eraser.delete(f"/contacts/{WA_ID}").status_code == 204
    assert api.get(f"/contacts/{WA_ID}").status_code == 404


def test_a_bare_token_keeps_every_scope(client, api, meta) -> None:
    say(meta, at=hours_ago(1))
    grant(api, categories=["orders"])  # consent, with the bare token
    assert api.post("/messages", send_body()).status_code == 202
    assert api.get(f"/contacts/{WA_ID}").status_code == 200
    assert api.delete(f"/contacts/{WA_ID}").status_code == 204


def test_an_unknown_token_is_still_401_and_the_description_needs_none(client) -> None:
    response = Caller(client, "not-a-token").get(f"/contacts/{WA_ID}")
    assert response.status_code == 401
    assert client.get("/api/v1/openapi.yaml").status_code == 200


def test_every_api_route_needs_a_scope_some_token_can_have(app: Flask) -> None:
    """A new route that changes something must be named in the scope table to be reachable."""
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in OPEN_ENDPOINTS:
            continue
        for method in rule.methods or ():
            assert required_scope(rule.endpoint, method) in TOKENS, (rule.rule, method)


def test_the_description_names_the_scope_each_route_needs(app: Flask) -> None:
    import re

    import yaml

    from bot.api.openapi import OPENAPI_FILE

    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    described = {
        (method.upper(), path): operation.get("x-scope")
        for path, item in document["paths"].items()
        for method, operation in item.items()
        if isinstance(operation, dict) and "operationId" in operation
    }
    for rule in app.url_map.iter_rules():
        if not rule.endpoint.startswith("api.") or rule.endpoint in OPEN_ENDPOINTS:
            continue
        path = re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule.removeprefix("/api/v1"))
        path = path.replace("{message_id}", "{id}")
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}:
            assert described[(method, path)] == required_scope(rule.endpoint, method), path
