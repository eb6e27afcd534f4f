"""Webhook bodies for the parser's tests: recorded fixtures and odd bodies built item by item."""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from bot.meta import InboundMessage, WebhookBody, parse_body
from tests.conftest import META_FIXTURES

OUR_NUMBER = "106540352242922"


def parse_fixture(name: str) -> WebhookBody:
    return parse_body((META_FIXTURES / name).read_bytes())


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def only_message(body: WebhookBody) -> InboundMessage:
    assert len(body.messages) == 1
    assert not body.statuses and not body.preferences
    return body.messages[0]


def envelope(*changes: dict[str, Any]) -> bytes:
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": list(changes)}]}
    ).encode()


def change(field: str = "messages", **value: Any) -> dict[str, Any]:
    metadata = {"display_phone_number": "15550783881", "phone_number_id": OUR_NUMBER}
    return {
        "field": field,
        "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
    }


def message(wamid: str = "wamid.A", **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from": "16505551234",
        "id": wamid,
        "timestamp": "1750000000",
        "type": "text",
        "text": {"body": "hi"},
    }
    item.update(fields)
    return {key: value for key, value in item.items() if value is not None}


def one_message(**fields: Any) -> InboundMessage:
    body = parse_body(envelope(change(messages=[message(**fields)])))
    assert body.malformed == ()
    return only_message(body)
