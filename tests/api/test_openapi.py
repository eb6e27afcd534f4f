"""openapi.yaml is served without a token and describes exactly the routes the app has."""

from __future__ import annotations

import re

import yaml

from bot.api.openapi import OPENAPI_FILE

METHODS = {"get", "post", "put", "patch", "delete"}


def test_the_description_is_served_without_a_token_as_yaml(client):
    response = client.get("/api/v1/openapi.yaml")
    assert response.status_code == 200
    assert response.mimetype == "application/yaml"
    assert response.data == OPENAPI_FILE.read_bytes()
    document = yaml.safe_load(response.data)
    assert document["openapi"].startswith("3.1")


def test_every_route_is_described_and_every_description_is_a_route(app):
    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    prefix = document["servers"][0]["url"]

    def base(item: dict) -> str:
        """A path's own server (the public entry points sit outside /api/v1), else the API's."""
        return (item.get("servers") or document["servers"])[0]["url"].rstrip("/")

    described = {
        (method.upper(), base(item) + path)
        for path, item in document["paths"].items()
        for method in item
        if method in METHODS
    }
    elsewhere = {base(i) + p for p, i in document["paths"].items() if base(i) != prefix}
    routed = {
        (method, re.sub(r"<(?:\w+:)?(\w+)>", r"{\1}", rule.rule))
        for rule in app.url_map.iter_rules()
        if rule.rule.startswith(prefix) or rule.rule in elsewhere
        for method in rule.methods - {"HEAD", "OPTIONS"}
    }
    # Path parameter names may differ between the code and the description; compare shapes.
    shape = re.compile(r"\{\w+\}")
    assert {(m, shape.sub("{}", p)) for m, p in described} == {
        (m, shape.sub("{}", p)) for m, p in routed
    }


def test_every_error_response_is_the_error_shape():
    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    responses = document["components"]["responses"]
    for item in document["paths"].values():
        for method, operation in item.items():
            if method not in METHODS:
                continue
            for status, response in operation["responses"].items():
                if int(status) < 400:
                    continue
                if "$ref" in response:
                    response = responses[response["$ref"].rsplit("/", 1)[1]]
                schema = response["content"]["application/json"]["schema"]
                assert schema == {"$ref": "#/components/schemas/Error"}, (method, status)
