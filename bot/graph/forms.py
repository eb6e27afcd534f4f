"""WhatsApp Flows on the wire: the message that opens our preferences form, and the Flow JSON the
business publishes in WhatsApp Manager for it.

The Flow JSON holds only the layout. Every text in it (heading, introduction, the categories with
their descriptions, the button) comes with each message, in the contact's language, together
with the boxes to tick: one published Flow serves every configured language, and the wording
shown is exactly the wording the bot rendered, versioned and quotes in the ledger.

Shapes as Meta documents them: an interactive message of type "flow" (action "flow", parameters
flow_message_version "3", flow_token, flow_id, flow_cta, flow_action "navigate" with the first
screen and its data); Flow JSON screens with typed ``data`` (each with an ``__example__``), a
CheckboxGroup fed by ``data-source`` and ``init-value``, and a Footer whose ``complete`` action
sends its payload back in the answer's ``response_json``, beside the flow token.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from bot.graph.payloads import BUTTONS_BODY_MAX, MessageLimitError, _check_text, _envelope
from flows.forms import FORM_KEY, FORM_NAME, SCREEN, TICKED_KEY
from flows.model import Form

FLOW_MESSAGE_VERSION = "3"
FLOW_JSON_VERSION = "7.1"
FLOW_CTA_MAX = 20
HEADING_MAX = 80
CHECKBOX_LABEL_MAX = 30
CHECKBOX_TITLE_MAX = 30
CHECKBOX_DESCRIPTION_MAX = 300
FOOTER_LABEL_MAX = 35
FLOW_TOKEN_MAX = 200

# The screen's data: what each message fills in (flow_action_payload.data).
_TEXTS = ("heading", "intro", "label", "submit")
_CHOICES = "choices"  # [{id, title, description}], the CheckboxGroup's data-source
_TICKED = "ticked"  # the ids ticked when the form opens, its init-value


def form_data(form: Form) -> dict[str, Any]:
    """The first screen's data for this form, each text checked against Meta's limits."""
    _check_text("form heading", form.heading, HEADING_MAX)
    _check_text("form label", form.label, CHECKBOX_LABEL_MAX)
    _check_text("form button", form.submit, FOOTER_LABEL_MAX)
    _check_text("form introduction", form.intro, 4096)
    choices = [
        {
            "id": choice.id,
            "title": _check_text("checkbox title", choice.title, CHECKBOX_TITLE_MAX),
            "description": _check_text(
                "checkbox description", choice.description, CHECKBOX_DESCRIPTION_MAX
            ),
        }
        for choice in form.choices
    ]
    if not choices:
        raise MessageLimitError("a form needs at least one checkbox")
    texts = {key: getattr(form, key) for key in _TEXTS}
    return texts | {_CHOICES: choices, _TICKED: list(form.ticked)}


def flow_payload(to: str, body: str, form: Form, *, flow_id: str, token: str) -> dict[str, Any]:
    """An interactive "flow" message: the body, and a button that opens the form on its screen
    with its texts and the boxes ticked as the person's choices stand now."""
    _check_text("flow message body", body, BUTTONS_BODY_MAX)
    parameters = {
        "flow_message_version": FLOW_MESSAGE_VERSION,
        "flow_token": _check_text("flow token", token, FLOW_TOKEN_MAX),
        "flow_id": _check_text("flow id", flow_id, 64),
        "flow_cta": _check_text("flow button", form.cta, FLOW_CTA_MAX),
        "flow_action": "navigate",
        "flow_action_payload": {"screen": SCREEN, "data": form_data(form)},
    }
    payload = _envelope(to, "interactive")
    payload["interactive"] = {
        "type": "flow",
        "body": {"text": body},
        "action": {"name": "flow", "parameters": parameters},
    }
    return payload


def offered_in(payload: Mapping[str, Any] | None) -> tuple[str, ...]:
    """The categories a flow message we built had a checkbox for (read back from the log)."""
    found: Any = payload or {}
    for key in ("interactive", "action", "parameters", "flow_action_payload", "data", _CHOICES):
        found = found.get(key) if isinstance(found, Mapping) else None
    if not isinstance(found, list):
        return ()
    return tuple(c["id"] for c in found if isinstance(c, Mapping) and isinstance(c.get("id"), str))


def flow_json(example: Form, *, title: str) -> dict[str, Any]:
    """The Flow JSON to publish: one screen, a CheckboxGroup of the categories (with their
    descriptions) and a button that completes the Flow with the ids ticked. ``example`` fills
    each data field's ``__example__``, which is what WhatsApp Manager's preview shows."""
    data = form_data(example)
    string = {"type": "string"}
    declared: dict[str, Any] = {key: string | {"__example__": data[key]} for key in _TEXTS}
    declared[_CHOICES] = {
        "type": "array",
        "items": {
            "type": "object",
            "properties": {"id": string, "title": string, "description": string},
        },
        "__example__": data[_CHOICES],
    }
    declared[_TICKED] = {"type": "array", "items": string, "__example__": data[_TICKED]}
    answer = {FORM_KEY: FORM_NAME, TICKED_KEY: f"${{form.{TICKED_KEY}}}"}
    children = [
        {"type": "TextHeading", "text": "${data.heading}"},
        {"type": "TextBody", "text": "${data.intro}"},
        {
            "type": "CheckboxGroup",
            "name": TICKED_KEY,
            "label": "${data.label}",
            "required": False,
            "data-source": f"${{data.{_CHOICES}}}",
            "init-value": f"${{data.{_TICKED}}}",
        },
        {
            "type": "Footer",
            "label": "${data.submit}",
            "on-click-action": {"name": "complete", "payload": answer},
        },
    ]
    screen = {
        "id": SCREEN,
        "title": title,
        "terminal": True,
        "success": True,
        "data": declared,
        "layout": {"type": "SingleColumnLayout", "children": children},
    }
    return {"version": FLOW_JSON_VERSION, "screens": [screen]}
