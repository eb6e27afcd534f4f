"""Build webhook bodies the way Meta sends them, for tests and a terminal chat.

Every builder returns the exact bytes of a POST body: compact JSON with non-ASCII text
``\\u``-escaped (``ensure_ascii=True``), as Meta serialises it, so signatures computed with
:func:`sign` over these bytes behave like real ones. Wamids are unique (``wamid.SIM…``) unless
given; timestamps default to now. Combine several bodies into one batch with :func:`batch_body`.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import time
import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

DEFAULT_PHONE_NUMBER_ID = "106540352242922"
DEFAULT_DISPLAY_PHONE_NUMBER = "15550783881"
DEFAULT_WABA_ID = "102290129340398"
# Media types a message can carry, with the mime type a phone typically sends for each.
_DEFAULT_MIME = {
    "image": "image/jpeg",
    "audio": "audio/ogg; codecs=opus",
    "video": "video/mp4",
    "document": "application/pdf",
    "sticker": "image/webp",
}

# Titles Meta uses for the send errors tests most often need; any other code gets a generic one.
_ERROR_TITLES = {
    131047: "Re-engagement message",
    131026: "Message undeliverable",
    131049: "This message was not delivered to maintain healthy ecosystem engagement.",
    131050: "Unable to deliver the message. This recipient has chosen to stop receiving "
    "marketing messages on WhatsApp from your business.",
    131051: "Message type unknown",
    130429: "Rate limit hit",
}

Timestamp = datetime | int | str | None


def new_wamid() -> str:
    """A fresh, unique message id shaped like Meta's."""
    return f"wamid.SIM{uuid.uuid4().hex.upper()}"


def sign(body: bytes, app_secret: str) -> str:
    """The ``X-Hub-Signature-256`` header value for ``body``: ``sha256=<hex>``."""
    digest = hmac.new(app_secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


def text_body(
    *,
    wa_id: str | None,
    text: str,
    wamid: str | None = None,
    timestamp: Timestamp = None,
    name: str | None = "Test User",
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    referral: Mapping[str, Any] | None = None,
    user_id: str | None = None,
    context_wamid: str | None = None,
) -> bytes:
    """A customer's text message. ``referral`` is Meta's object, e.g. ``{"source_type": "ad"}``."""
    message = _message(
        wa_id=wa_id,
        user_id=user_id,
        wamid=wamid,
        timestamp=timestamp,
        type_="text",
        content={"body": text},
        context_wamid=context_wamid,
        context_from=display_phone_number,
    )
    if referral is not None:
        message["referral"] = dict(referral)
    return _messages_body(
        message,
        wa_id=wa_id,
        user_id=user_id,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def button_reply_body(
    *,
    wa_id: str | None,
    reply_id: str,
    title: str,
    context_wamid: str | None = None,
    wamid: str | None = None,
    timestamp: Timestamp = None,
    name: str | None = "Test User",
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    user_id: str | None = None,
) -> bytes:
    """A tap on one of our interactive reply buttons (``context_wamid``: the prompt's wamid)."""
    return _interactive_body(
        kind="button_reply",
        reply={"id": reply_id, "title": title},
        wa_id=wa_id,
        context_wamid=context_wamid,
        wamid=wamid,
        timestamp=timestamp,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        user_id=user_id,
    )


def list_reply_body(
    *,
    wa_id: str | None,
    reply_id: str,
    title: str,
    description: str | None = None,
    context_wamid: str | None = None,
    wamid: str | None = None,
    timestamp: Timestamp = None,
    name: str | None = "Test User",
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    user_id: str | None = None,
) -> bytes:
    """A choice from one of our interactive lists."""
    reply = {"id": reply_id, "title": title}
    if description is not None:
        reply["description"] = description
    return _interactive_body(
        kind="list_reply",
        reply=reply,
        wa_id=wa_id,
        context_wamid=context_wamid,
        wamid=wamid,
        timestamp=timestamp,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
        user_id=user_id,
    )


def template_button_body(
    *,
    wa_id: str | None,
    payload: str,
    text: str,
    context_wamid: str | None = None,
    wamid: str | None = None,
    timestamp: Timestamp = None,
    name: str | None = "Test User",
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    user_id: str | None = None,
) -> bytes:
    """A tap on a template's quick-reply button, e.g. Meta's "Stop promotions"."""
    message = _message(
        wa_id=wa_id,
        user_id=user_id,
        wamid=wamid,
        timestamp=timestamp,
        type_="button",
        content={"payload": payload, "text": text},
        context_wamid=context_wamid,
        context_from=display_phone_number,
    )
    return _messages_body(
        message,
        wa_id=wa_id,
        user_id=user_id,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def media_body(
    *,
    wa_id: str | None,
    media_type: str = "image",
    caption: str | None = None,
    media_id: str | None = None,
    mime_type: str | None = None,
    filename: str | None = None,
    wamid: str | None = None,
    timestamp: Timestamp = None,
    name: str | None = "Test User",
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    user_id: str | None = None,
) -> bytes:
    """An image, audio, video, document or sticker message."""
    if media_type not in _DEFAULT_MIME:
        raise ValueError(f"media_type must be one of {', '.join(_DEFAULT_MIME)}: {media_type!r}")
    content: dict[str, Any] = {
        "mime_type": mime_type or _DEFAULT_MIME[media_type],
        "sha256": "SIM" + uuid.uuid4().hex,
        "id": media_id or str(uuid.uuid4().int)[:16],
    }
    if caption is not None:
        content["caption"] = caption
    if filename is not None:
        content["filename"] = filename
    message = _message(
        wa_id=wa_id,
        user_id=user_id,
        wamid=wamid,
        timestamp=timestamp,
        type_=media_type,
        content=content,
    )
    return _messages_body(
        message,
        wa_id=wa_id,
        user_id=user_id,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def status_body(
    *,
    wamid: str,
    status: str,
    recipient_id: str | None,
    timestamp: Timestamp = None,
    errors: Sequence[int | Mapping[str, Any]] | None = None,
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    recipient_user_id: str | None = None,
    conversation_id: str | None = None,
    pricing_category: str | None = None,
    billable: bool | None = None,
) -> bytes:
    """A status for one of our sent messages. ``errors`` items are Meta's objects or bare codes."""
    item: dict[str, Any] = {"id": wamid, "status": status, "timestamp": _epoch(timestamp)}
    if recipient_id is not None:
        item["recipient_id"] = recipient_id
    if recipient_user_id is not None:
        item["recipient_user_id"] = recipient_user_id
    if conversation_id is not None:
        item["conversation"] = {"id": conversation_id, "origin": {"type": "service"}}
    if pricing_category is not None or billable is not None:
        pricing: dict[str, Any] = {"pricing_model": "PMP"}
        if billable is not None:
            pricing["billable"] = billable
        if pricing_category is not None:
            pricing["category"] = pricing_category
        item["pricing"] = pricing
    if errors:
        item["errors"] = [_error(error) for error in errors]
    value = _value(phone_number_id, display_phone_number)
    value["statuses"] = [item]
    return _envelope("messages", value)


def preference_body(
    *,
    wa_id: str | None,
    value: str,
    timestamp: Timestamp = None,
    category: str = "marketing_messages",
    detail: str | None = None,
    name: str | None = "Test User",
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
    display_phone_number: str = DEFAULT_DISPLAY_PHONE_NUMBER,
    user_id: str | None = None,
) -> bytes:
    """A marketing stop/resume made inside WhatsApp (field ``user_preferences``)."""
    if wa_id is None and user_id is None:
        raise ValueError("a preference update needs a wa_id or a user_id")
    if detail is None:
        verb = "stop" if value == "stop" else "resume"
        detail = f"User requested to {verb} marketing messages"
    item: dict[str, Any] = {}
    if wa_id is not None:
        item["wa_id"] = wa_id
    if user_id is not None:
        item["user_id"] = user_id
    # Unlike messages and statuses, Meta sends this timestamp as a number.
    item |= {"detail": detail, "category": category, "value": value}
    item["timestamp"] = int(_epoch(timestamp))
    body = _value(phone_number_id, display_phone_number)
    body["contacts"] = [_contact(wa_id=wa_id, user_id=user_id, name=name)]
    body["user_preferences"] = [item]
    return _envelope("user_preferences", body)


def batch_body(*bodies: bytes) -> bytes:
    """One body carrying every entry of ``bodies``, in order, as Meta batches updates."""
    entries: list[Any] = []
    for body in bodies:
        entries.extend(json.loads(body)["entry"])
    return _dumps({"object": "whatsapp_business_account", "entry": entries})


# --- assembly ---


def _epoch(timestamp: Timestamp) -> str:
    if timestamp is None:
        return str(int(time.time()))
    if isinstance(timestamp, datetime):
        if timestamp.tzinfo is None:
            raise ValueError("timestamp must be timezone-aware")
        return str(int(timestamp.timestamp()))
    return str(timestamp)


def _error(error: int | Mapping[str, Any]) -> dict[str, Any]:
    if not isinstance(error, int):
        return dict(error)
    title = _ERROR_TITLES.get(error, "Simulated error")
    return {
        "code": error,
        "title": title,
        "message": title,
        "error_data": {"details": f"Simulated error {error}."},
    }


def _message(
    *,
    wa_id: str | None,
    user_id: str | None,
    wamid: str | None,
    timestamp: Timestamp,
    type_: str,
    content: Mapping[str, Any],
    context_wamid: str | None = None,
    context_from: str | None = None,
) -> dict[str, Any]:
    if wa_id is None and user_id is None:
        raise ValueError("a message needs a wa_id or a user_id")
    message: dict[str, Any] = {}
    if context_wamid is not None:
        message["context"] = {"from": context_from, "id": context_wamid}
    if wa_id is not None:
        message["from"] = wa_id
    if user_id is not None:
        message["from_user_id"] = user_id
    message |= {
        "id": wamid or new_wamid(),
        "timestamp": _epoch(timestamp),
        "type": type_,
        type_: dict(content),
    }
    return message


def _interactive_body(
    *,
    kind: str,
    reply: Mapping[str, Any],
    wa_id: str | None,
    context_wamid: str | None,
    wamid: str | None,
    timestamp: Timestamp,
    name: str | None,
    phone_number_id: str,
    display_phone_number: str,
    user_id: str | None,
) -> bytes:
    message = _message(
        wa_id=wa_id,
        user_id=user_id,
        wamid=wamid,
        timestamp=timestamp,
        type_="interactive",
        content={"type": kind, kind: dict(reply)},
        context_wamid=context_wamid,
        context_from=display_phone_number,
    )
    return _messages_body(
        message,
        wa_id=wa_id,
        user_id=user_id,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=display_phone_number,
    )


def _contact(*, wa_id: str | None, user_id: str | None, name: str | None) -> dict[str, Any]:
    contact: dict[str, Any] = {"profile": {"name": name} if name is not None else {}}
    if wa_id is not None:
        contact["wa_id"] = wa_id
    if user_id is not None:
        contact["user_id"] = user_id
    return contact


def _value(phone_number_id: str, display_phone_number: str) -> dict[str, Any]:
    return {
        "messaging_product": "whatsapp",
        "metadata": {
            "display_phone_number": display_phone_number,
            "phone_number_id": phone_number_id,
        },
    }


def _messages_body(
    message: dict[str, Any],
    *,
    wa_id: str | None,
    user_id: str | None,
    name: str | None,
    phone_number_id: str,
    display_phone_number: str,
) -> bytes:
    value = _value(phone_number_id, display_phone_number)
    value["contacts"] = [_contact(wa_id=wa_id, user_id=user_id, name=name)]
    value["messages"] = [message]
    return _envelope("messages", value)


def _envelope(field: str, value: dict[str, Any]) -> bytes:
    return _dumps(
        {
            "object": "whatsapp_business_account",
            "entry": [{"id": DEFAULT_WABA_ID, "changes": [{"field": field, "value": value}]}],
        }
    )


def _dumps(document: Mapping[str, Any]) -> bytes:
    return json.dumps(document, ensure_ascii=True, separators=(",", ":")).encode("ascii")
