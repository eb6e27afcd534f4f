"""WhatsApp as the C27 tests see it: signed webhook bodies in, the Graph API's requests out.

Only Meta is replaced, by :class:`tests.fake_graph.FakeGraph`: the app's own dispatcher sends
through the real GraphClient over HTTP, so a test reads the exact bodies Meta would receive.
Bodies are Meta's recorded fixtures (tests/fixtures/meta), with the ids and times a
conversation needs, or built by bot.dev.simulate in the same shapes.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from flask import Flask

from bot.dev import simulate
from bot.wiring.services import services
from tests.conftest import fixture_bytes
from tests.fake_graph import FakeGraph, Received

TOKEN = "test"
PHONE_NUMBER_ID = simulate.DEFAULT_PHONE_NUMBER_ID
NUMBER = "16505551234"  # Sheena, in the recorded fixtures
NEW_NUMBER = "16505559999"  # her number after system_user_changed_number.json
USER_ID = "US.1410018717833190"  # her user id before the change
NEW_USER_ID = "US.2020018717833190"  # and after it
KAI = "US.13491208655302741918"  # a customer known by username only
TEMPLATE = {"name": "order_update", "language": "en"}


class WhatsApp:
    """Posts signed bodies to /webhook, then lets the dispatcher send what they caused."""

    def __init__(self, app: Flask, fake: FakeGraph) -> None:
        self.client = app.test_client()
        self.secret = services(app).settings.app_secret
        self.fake = fake
        self.dispatcher = services(app).dispatcher()

    def post(self, body: bytes) -> list[Received]:
        """Deliver one body as Meta would; what the bot then sent to the Graph API."""
        response = self.client.post(
            "/webhook",
            data=body,
            headers={"X-Hub-Signature-256": simulate.sign(body, self.secret)},
        )
        assert response.status_code == 200, response.get_data(as_text=True)
        return self.send()

    def send(self) -> list[Received]:
        """Send everything due; the requests the Graph API received meanwhile."""
        before = len(self.fake.snapshot())
        self.dispatcher.drain()
        return [r for r in self.fake.snapshot()[before:] if r.payload.get("status") != "read"]


def at(minutes_ago: float) -> datetime:
    return datetime.now(UTC) - timedelta(minutes=minutes_ago)


def recorded(name: str, **message: Any) -> bytes:
    """A recorded fixture with its first message's fields changed (``context_id`` sets the
    message it answers; a datetime ``timestamp`` becomes Meta's epoch seconds)."""
    document = json.loads(fixture_bytes(name))
    item = document["entry"][0]["changes"][0]["value"]["messages"][0]
    if "context_id" in message:
        item["context"]["id"] = message.pop("context_id")
    if isinstance(message.get("timestamp"), datetime):
        message["timestamp"] = str(int(message["timestamp"].timestamp()))
    item.update(message)
    return json.dumps(document).encode()


def says(
    *, text: str, when: datetime | int, wa_id: str | None = None, user_id: str | None = None
) -> bytes:
    return simulate.text_body(wa_id=wa_id, user_id=user_id, text=text, timestamp=when, name="Kai")


def taps(
    reply_id: str,
    title: str,
    *,
    prompt: Received,
    when: datetime | int,
    wa_id: str | None = None,
    user_id: str | None = None,
) -> bytes:
    return simulate.button_reply_body(
        wa_id=wa_id,
        user_id=user_id,
        reply_id=reply_id,
        title=title,
        context_wamid=prompt.wamid,
        timestamp=when,
        name="Kai",
    )


def buttons(request: Received) -> list[str]:
    action = request.payload.get("interactive", {}).get("action", {})
    return [b["reply"]["id"] for b in action.get("buttons", [])]


def body_text(request: Received) -> str:
    payload = request.payload
    return payload.get("text", {}).get("body") or payload.get("interactive", {}).get(
        "body", {}
    ).get("text", "")


def addressed_by_user_id(request: Received, user_id: str) -> bool:
    """Meta's rule: `recipient` carries the user id, and no `to` (which would win)."""
    return request.payload.get("recipient") == user_id and "to" not in request.payload
