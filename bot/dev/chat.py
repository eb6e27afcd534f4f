"""A customer's side of WhatsApp in the terminal: signed bodies posted to the app in-process.

Every message goes through the real webhook, dialogue, outbox and dispatcher; only Meta is
replaced, by a console transport that shows what would have been sent.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from typing import Any

from flask import Flask

from bot.dev import simulate
from bot.dev.simulate_kinds import flow_reply_body
from bot.graph.console import ConsoleTransport, render
from bot.wiring.services import services
from flows.forms import FORM_KEY, FORM_NAME, TICKED_KEY


@dataclass(slots=True)
class Choice:
    reply_id: str
    title: str
    context_wamid: str
    row: bool = False  # a row of a list message, answered as Meta answers a list choice


@dataclass(slots=True)
class BotMessage:
    wamid: str
    payload: dict[str, Any]
    lines: list[str]


@dataclass
class ChatSession:
    app: Flask
    wa_id: str = "15550001234"
    name: str = "Terminal Customer"
    choices: list[Choice] = field(default_factory=list)
    form: tuple[str, str] | None = None  # (flow token, wamid) of the last form shown

    def __post_init__(self) -> None:
        self.transport = ConsoleTransport(stream=io.StringIO())
        self.dispatcher = services(self.app).dispatcher(transport=self.transport, concurrency=1)
        self.client = self.app.test_client()

    def say(self, text: str, *, from_ad: bool = False) -> list[BotMessage]:
        """Type a message; a number picks one of the last buttons shown."""
        stripped = text.strip()
        if stripped.isdigit() and 1 <= int(stripped) <= len(self.choices):
            return self.press(int(stripped))
        referral = (
            {"source_type": "ad", "source_id": "terminal", "headline": "Ad"} if from_ad else None
        )
        return self._post(
            simulate.text_body(wa_id=self.wa_id, text=text, name=self.name, referral=referral)
        )

    def press(self, number: int) -> list[BotMessage]:
        choice = self.choices[number - 1]
        reply_body = simulate.list_reply_body if choice.row else simulate.button_reply_body
        return self._post(
            reply_body(
                wa_id=self.wa_id,
                reply_id=choice.reply_id,
                title=choice.title,
                context_wamid=choice.context_wamid,
                name=self.name,
            )
        )

    def answer_form(self, ticked: list[str]) -> list[BotMessage]:
        """Send the last preferences form back with these boxes ticked, as WhatsApp would."""
        if self.form is None:
            raise LookupError("no form has been shown: send PREFERENCES first")
        token, wamid = self.form
        response = {"flow_token": token, FORM_KEY: FORM_NAME, TICKED_KEY: ticked}
        body = flow_reply_body(
            wa_id=self.wa_id, response=response, context_wamid=wamid, name=self.name
        )
        return self._post(body)

    def send_image(self) -> list[BotMessage]:
        return self._post(simulate.media_body(wa_id=self.wa_id, media_type="image", name=self.name))

    def _post(self, body: bytes) -> list[BotMessage]:
        secret = services(self.app).settings.app_secret
        response = self.client.post(
            "/webhook",
            data=body,
            headers={"X-Hub-Signature-256": simulate.sign(body, secret)},
        )
        if response.status_code != 200:
            raise RuntimeError(f"webhook answered {response.status_code}: {response.get_data()!r}")
        already = len(self.transport.sent)
        self.dispatcher.drain()
        new = [
            BotMessage(wamid=wamid, payload=payload, lines=render(payload))
            for _, payload, wamid in self.transport.sent[already:]
            if payload.get("to") == self.wa_id
        ]
        shown = _choices(new)
        if shown:
            self.choices = shown
        self.form = _form(new) or self.form
        return new


def _form(messages: list[BotMessage]) -> tuple[str, str] | None:
    """The flow token and wamid of the last form among these messages."""
    for message in reversed(messages):
        interactive = message.payload.get("interactive") or {}
        if interactive.get("type") == "flow":
            return interactive["action"]["parameters"]["flow_token"], message.wamid
    return None


def _choices(messages: list[BotMessage]) -> list[Choice]:
    """The buttons or list rows of the last interactive message, in the order shown."""
    for message in reversed(messages):
        interactive = message.payload.get("interactive")
        if not interactive:
            continue
        action = interactive.get("action", {})
        found = [
            Choice(b["reply"]["id"], b["reply"]["title"], message.wamid)
            for b in action.get("buttons", [])
        ]
        for section in action.get("sections", []):
            found += [
                Choice(r["id"], r["title"], message.wamid, row=True)
                for r in section.get("rows", [])
            ]
        return found
    return []
