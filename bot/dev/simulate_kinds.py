"""Bodies for the message kinds that are not a plain answer: group messages, edits, deletions,
reactions, the first opening of a chat and a WhatsApp Flow's answer. Same conventions as
:mod:`bot.dev.simulate`."""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from bot.dev.simulate import (
    DEFAULT_DISPLAY_PHONE_NUMBER,
    DEFAULT_PHONE_NUMBER_ID,
    Timestamp,
    _epoch,
    _messages_body,
    new_wamid,
)


def kind_body(
    *,
    wa_id: str,
    type_: str,
    content: dict[str, Any] | None = None,
    extra: dict[str, Any] | None = None,
    wamid: str | None = None,
    timestamp: Timestamp = None,
    name: str | None = "Test User",
    phone_number_id: str = DEFAULT_PHONE_NUMBER_ID,
) -> bytes:
    """One message of ``type_``; ``content`` goes under that key (none for ``request_welcome``)."""
    message: dict[str, Any] = {
        "from": wa_id,
        "id": wamid or new_wamid(),
        "timestamp": _epoch(timestamp),
        "type": type_,
    }
    if content is not None:
        message[type_] = content
    message |= extra or {}
    return _messages_body(
        message,
        wa_id=wa_id,
        user_id=None,
        name=name,
        phone_number_id=phone_number_id,
        display_phone_number=DEFAULT_DISPLAY_PHONE_NUMBER,
    )


def group_text_body(*, wa_id: str, text: str, group_id: str, **fields: Any) -> bytes:
    """A participant's text in a group chat the business is part of."""
    extra = {"group_id": group_id}
    return kind_body(wa_id=wa_id, type_="text", content={"body": text}, extra=extra, **fields)


def edit_body(*, wa_id: str, original_wamid: str, text: str, **fields: Any) -> bytes:
    """The customer edited ``original_wamid``; the new content is a text."""
    content = {
        "original_message_id": original_wamid,
        "message": {"type": "text", "text": {"body": text}},
    }
    return kind_body(wa_id=wa_id, type_="edit", content=content, **fields)


def revoke_body(*, wa_id: str, original_wamid: str, **fields: Any) -> bytes:
    """The customer deleted ``original_wamid``."""
    content = {"original_message_id": original_wamid}
    return kind_body(wa_id=wa_id, type_="revoke", content=content, **fields)


def reaction_body(*, wa_id: str, message_id: str, emoji: str = "", **fields: Any) -> bytes:
    """A reaction to ``message_id``; the empty emoji (the default) takes a reaction off."""
    content = {"message_id": message_id, "emoji": emoji}
    return kind_body(wa_id=wa_id, type_="reaction", content=content, **fields)


def request_welcome_body(*, wa_id: str, **fields: Any) -> bytes:
    """The customer opened the chat for the first time."""
    return kind_body(wa_id=wa_id, type_="request_welcome", **fields)


def flow_reply_body(
    *, wa_id: str, response: Mapping[str, Any], context_wamid: str | None = None, **fields: Any
) -> bytes:
    """A WhatsApp Flow's answer (``nfm_reply``): ``response`` is what the Flow sent back, the
    flow token among it, carried as Meta carries it, a JSON string in ``response_json``."""
    content = {
        "type": "nfm_reply",
        "nfm_reply": {"name": "flow", "body": "Sent", "response_json": json.dumps(response)},
    }
    extra = {"context": {"from": DEFAULT_DISPLAY_PHONE_NUMBER, "id": context_wamid}}
    return kind_body(
        wa_id=wa_id,
        type_="interactive",
        content=content,
        extra=extra if context_wamid else None,
        **fields,
    )
