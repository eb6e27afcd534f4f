"""POST /messages takes Meta's own template object, as businesses copy it from Meta's docs."""

from __future__ import annotations

import pytest
from sqlmodel import Session, select

from storage.models import Message, OutboxItem
from tests.api.conftest import WA_ID, grant, say


def queued_template(engine, message_id: str) -> dict:
    with Session(engine) as session:
        item = session.exec(
            select(OutboxItem)
            .join(Message, Message.id == OutboxItem.message_id)
            .where(Message.id == message_id)
        ).one()
        return item.payload["template"]


@pytest.mark.parametrize(
    "language",
    [{"code": "en_US"}, {"code": "en_US", "policy": "deterministic"}, {"code": "fil"}, "pt_BR"],
)
def test_meta_template_object_is_sent_as_given(api, meta, engine, language):
    say(meta)
    grant(api)
    components = [{"type": "body", "parameters": [{"type": "text", "text": "Ada"}]}]
    template = {"name": "weekly_offers", "language": language, "components": components}
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "template": template})
    assert response.status_code == 202, response.json
    sent = queued_template(engine, response.json["id"])
    expected = language if isinstance(language, dict) else {"code": language}
    assert sent == {"name": "weekly_offers", "language": expected, "components": components}


@pytest.mark.parametrize(
    ("language", "field"),
    [
        ({"code": "english"}, "template.language.code"),
        ({"code": "en-US"}, "template.language.code"),
        ({"code": 1}, "template.language.code"),
        ({"policy": "deterministic"}, "template.language.code"),
        ({"code": "en", "policy": "fallback"}, "template.language.policy"),
        ("EN", "template.language"),
        ([], "template.language"),
    ],
)
def test_a_language_meta_would_refuse_is_422_naming_the_field(api, meta, language, field):
    say(meta)
    grant(api)
    template = {"name": "weekly_offers", "language": language}
    response = api.post("/messages", {"to": WA_ID, "category": "offers", "template": template})
    assert response.status_code == 422
    assert response.json["message"].startswith(f"{field}:"), response.json
