"""The API's input limits are the database's column limits: one set of numbers (C26).

openapi.yaml states them as maxLength, the tables are declared with them (storage.limits), and the
API refuses a longer value with a 422 naming the field before the database sees it. PostgreSQL
enforces column lengths and SQLite does not, so the refusals are checked on both.
"""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from sqlmodel import SQLModel

import storage.models  # noqa: F401 (declares the tables)
from bot.api.openapi import OPENAPI_FILE
from bot.api.validation import TEMPLATE_LANGUAGE, TEMPLATE_NAME_MAX, TEXT_MAX
from bot.graph.payloads import TEXT_BODY_MAX
from bot.wiring.logmask import fingerprint
from storage import limits
from tests.api.conftest import WA_ID, consent_body, grant, hours_ago, say
from tests.conftest import API_TOKEN

# Where each maxLength sits in openapi.yaml, and the number it must be.
MAX_LENGTHS: dict[str, int] = {
    "components.schemas.PhoneNumber": limits.WA_ID,
    "components.schemas.UserId": limits.USER_ID,
    "components.schemas.CategoryId": limits.CATEGORY_ID,
    "components.schemas.ConsentRequest.properties.text": limits.CONSENT_TEXT,
    "components.schemas.SendText.properties.text": TEXT_BODY_MAX,
    "components.schemas.TemplateSpec.properties.name": TEMPLATE_NAME_MAX,
    "components.parameters.IdempotencyKey.schema": limits.IDEMPOTENCY_CLIENT_KEY,
}

# Columns an API input ends up in: table.column → its limit.
COLUMNS: dict[str, int] = {
    "contact.wa_id": limits.WA_ID,
    "contact.user_id": limits.USER_ID,
    "consent.category": limits.CATEGORY_ID,
    "consent_event.category": limits.CATEGORY_ID,
    "consent_event.source": limits.CONSENT_SOURCE,
    "message.category": limits.CATEGORY_ID,
    "idempotency_record.key": limits.IDEMPOTENCY_KEY,
}


def _max_lengths(node: Any, path: str = "") -> dict[str, int]:
    found: dict[str, int] = {}
    if isinstance(node, dict):
        if "maxLength" in node:
            found[path] = node["maxLength"]
        for key, child in node.items():
            found |= _max_lengths(child, f"{path}.{key}" if path else str(key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found |= _max_lengths(child, f"{path}[{index}]")
    return found


def test_every_max_length_in_the_description_is_the_limit_the_code_enforces() -> None:
    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    assert _max_lengths(document) == MAX_LENGTHS


def test_the_tables_are_declared_with_the_same_numbers() -> None:
    tables = SQLModel.metadata.tables
    declared = {
        name: tables[name.split(".")[0]].columns[name.split(".")[1]].type.length for name in COLUMNS
    }
    assert declared == COLUMNS
    assert TEXT_MAX == limits.CONSENT_TEXT
    # A stored idempotency key is the token's fingerprint, ':' and the client's key.
    assert len(fingerprint(API_TOKEN)) + 1 + limits.IDEMPOTENCY_CLIENT_KEY <= limits.IDEMPOTENCY_KEY


@pytest.fixture(params=["suite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def app_config(request: pytest.FixtureRequest, app_config: dict[str, str]) -> dict[str, str]:
    if request.param == "postgresql":
        return {**app_config, "DATABASE_URL": request.getfixturevalue("postgres_url")}
    return app_config


def spelled(length: int) -> str:
    """WA_ID, spelled as a business might, padded with spaces to exactly length characters."""
    number = "+1 650-555-1234"
    return number + " " * (length - len(number))


def user_id(length: int) -> str:
    """A business-scoped user id padded with spaces to exactly length characters."""
    return "US.13491208655302741918".ljust(length)


def send_text(length: int) -> dict[str, Any]:
    return {"to": WA_ID, "category": "orders", "text": "x" * length}


def send_template(name: int = 10, language: str = "en_US") -> dict[str, Any]:
    template = {"name": "n" * name, "language": language, "components": []}
    return {"to": WA_ID, "category": "offers", "template": template}


CASES = [
    # (route, body at the limit, body one past it, field the refusal names)
    (
        "/consents",
        consent_body(wa_id=spelled(limits.WA_ID)),
        consent_body(wa_id=spelled(limits.WA_ID + 1)),
        "wa_id",
    ),
    (
        "/consents",
        consent_body(wa_id=user_id(limits.USER_ID)),
        consent_body(wa_id=user_id(limits.USER_ID + 1)),
        "wa_id",
    ),
    (
        "/consents",
        consent_body(text="t" * limits.CONSENT_TEXT),
        consent_body(text="t" * (limits.CONSENT_TEXT + 1)),
        "text",
    ),
    (
        "/consents",
        consent_body(categories=["offers"]),
        consent_body(categories=["c" * (limits.CATEGORY_ID + 1)]),
        "categories[0]",
    ),
    ("/messages", send_text(TEXT_BODY_MAX), send_text(TEXT_BODY_MAX + 1), "text"),
    (
        "/messages",
        send_template(name=TEMPLATE_NAME_MAX),
        send_template(name=TEMPLATE_NAME_MAX + 1),
        "template.name",
    ),
    (
        "/messages",
        # A language code is held to Meta's shape (TemplateLanguageCode), not to a length.
        send_template(language="pt_BR"),
        send_template(language="pt_BRA"),
        "template.language",
    ),
]


@pytest.mark.parametrize(
    ("route", "at_limit", "past_limit", "field"),
    CASES,
    ids=[f"{case[0]}:{case[3]}" for case in CASES],
)
def test_a_value_past_its_limit_is_refused_before_the_database_sees_it(
    api, meta, route: str, at_limit: dict, past_limit: dict, field: str
) -> None:
    say(meta, WA_ID, at=hours_ago(1))
    grant(api, WA_ID, categories=["orders", "offers"])

    accepted = api.post(route, at_limit)
    refused = api.post(route, past_limit)

    assert accepted.status_code in (201, 202), accepted.json
    assert refused.status_code == 422, refused.json
    assert refused.json["message"].startswith(f"{field}:")


def test_an_idempotency_key_past_its_limit_is_refused(api) -> None:
    key = "k" * limits.IDEMPOTENCY_CLIENT_KEY
    accepted = api.post("/consents", consent_body(), headers={"Idempotency-Key": key})
    assert accepted.status_code == 201
    refused = api.post("/consents", consent_body(), headers={"Idempotency-Key": key + "k"})
    assert refused.status_code == 422
    assert refused.json["error"] == "invalid_idempotency_key"


def test_the_template_language_pattern_in_the_description_is_the_one_the_code_enforces() -> None:
    document = yaml.safe_load(OPENAPI_FILE.read_text(encoding="utf-8"))
    pattern = document["components"]["schemas"]["TemplateLanguageCode"]["pattern"]
    assert pattern == f"^{TEMPLATE_LANGUAGE.pattern}$"
