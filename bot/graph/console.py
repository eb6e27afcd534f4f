"""A transport that prints messages instead of sending them, for use without an access token.

Development and demos run the whole bot (dialogue, outbox, dispatcher) without a Meta account:
each message is rendered readably, given a made-up wamid and kept in :attr:`ConsoleTransport.sent`
so a terminal chat can show it. Nothing goes over HTTP.
"""

from __future__ import annotations

import json
import logging
import sys
import threading
import uuid
from typing import Any, TextIO

from bot.graph.payloads import recipient_of
from bot.wiring.logmask import mask_recipient

log = logging.getLogger(__name__)

WAMID_PREFIX = "wamid.CONSOLE."


def new_wamid() -> str:
    return WAMID_PREFIX + uuid.uuid4().hex


def _render_interactive(interactive: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    header = interactive.get("header") or {}
    if header.get("text"):
        lines.append(f"*{header['text']}*")
    lines.append((interactive.get("body") or {}).get("text", ""))
    footer = interactive.get("footer") or {}
    if footer.get("text"):
        lines.append(f"_{footer['text']}_")

    action = interactive.get("action") or {}
    if interactive.get("type") == "button":
        for number, button in enumerate(action.get("buttons", []), start=1):
            reply = button.get("reply", {})
            lines.append(f"  {number}) {reply.get('title', '')} [{reply.get('id', '')}]")
    elif interactive.get("type") == "list":
        lines.append(f"  ☰ {action.get('button', '')}")
        number = 0  # numbered across sections, the way a person would pick from the list
        for section in action.get("sections", []):
            if section.get("title"):
                lines.append(f"  {section['title']}:")
            for row in section.get("rows", []):
                number += 1
                description = f" — {row['description']}" if row.get("description") else ""
                lines.append(
                    f"  {number}) {row.get('title', '')}{description} [{row.get('id', '')}]"
                )
    elif interactive.get("type") == "flow":
        lines += _render_flow(action.get("parameters") or {})
    else:
        lines.append(f"  (interactive {interactive.get('type')!r}: {json.dumps(action)})")
    return lines


def _render_flow(parameters: dict[str, Any]) -> list[str]:
    """A WhatsApp Flow's button, and the form it opens with its boxes as they start out."""
    data = (parameters.get("flow_action_payload") or {}).get("data") or {}
    ticked = set(data.get("ticked") or ())
    lines = [f"  ▸ {parameters.get('flow_cta', '')} [flow {parameters.get('flow_id', '')}]"]
    if data.get("heading"):
        lines.append(f"    {data['heading']}")
    for choice in data.get("choices") or ():
        box = "☑" if choice.get("id") in ticked else "☐"
        lines.append(f"    {box} {choice.get('title', '')} [{choice.get('id', '')}]")
    return lines


def _render_template(template: dict[str, Any]) -> list[str]:
    language = (template.get("language") or {}).get("code", "?")
    lines = [f"[template {template.get('name', '?')} ({language})]"]
    for component in template.get("components") or []:
        values = [
            str(parameter.get("text", parameter.get("payload", parameter.get("type", ""))))
            for parameter in component.get("parameters") or []
        ]
        kind = component.get("type", "?")
        if component.get("sub_type"):
            kind += f"/{component['sub_type']}#{component.get('index', '')}"
        lines.append(f"  {kind}: " + ", ".join(values))
    return lines


def render(payload: dict[str, Any]) -> list[str]:
    """The lines a person reading the console should see for one message payload."""
    kind = payload.get("type")
    if kind == "text":
        return [(payload.get("text") or {}).get("body", "")]
    if kind == "interactive":
        return _render_interactive(payload.get("interactive") or {})
    if kind == "template":
        return _render_template(payload.get("template") or {})
    return [f"({kind} message) {json.dumps(payload.get(kind or '', {}), ensure_ascii=False)}"]


class ConsoleTransport:
    """Implements :class:`bot.graph.client.Transport` by printing to ``stream``.

    ``stream`` defaults to whatever ``sys.stdout`` is at the time of each send, so a redirected or
    captured stdout is honoured. Safe to share between the web and dispatcher threads.
    """

    def __init__(self, stream: TextIO | None = None) -> None:
        self._stream = stream
        self._lock = threading.Lock()
        self.sent: list[tuple[str, dict[str, Any], str]] = []  # (phone_number_id, payload, wamid)
        self.read: list[tuple[str, str]] = []  # (phone_number_id, message_id)

    def send(self, phone_number_id: str, payload: dict[str, Any]) -> str:
        wamid = new_wamid()
        to = mask_recipient(recipient_of(payload))
        lines = [f"── WhatsApp to {to} from {phone_number_id} ({wamid}) ──", *render(payload)]
        with self._lock:
            self.sent.append((phone_number_id, payload, wamid))
            stream = self._stream or sys.stdout
            stream.write("\n".join(lines) + "\n")
            stream.flush()
        log.info("console transport: %s to %s as %s", payload.get("type"), to, wamid)
        return wamid

    def mark_read(self, phone_number_id: str, message_id: str) -> None:
        # Recorded, not printed: read receipts would drown the conversation in noise.
        with self._lock:
            self.read.append((phone_number_id, message_id))
        log.debug("console transport: marked %s read", message_id)
