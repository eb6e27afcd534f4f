"""Typed, frozen events for everything a WhatsApp Cloud API webhook body can carry.

Each event is built from one JSON item by its ``from_payload`` classmethod and keeps that item as
``raw`` so nothing is lost when it is stored; ``raw`` takes no part in equality, hashing or repr,
so two deliveries of the same update compare equal and logs stay readable.

``from_payload`` raises :class:`ItemError` (a ``ValueError``) naming what is missing or wrong,
relative to the item; the parser prefixes the item's path in the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from bot.meta.envelope import (
    ContactProfile,
    MessageType,
    MetaError,
    Referral,
    StatusType,
    match_contact,
)
from bot.meta.readers import (
    ItemError,
    get_dict,
    get_float,
    get_str,
    parse_timestamp,
    require_aware,
    require_str,
)

MEDIA_TYPES: frozenset[MessageType] = frozenset(
    {
        MessageType.IMAGE,
        MessageType.AUDIO,
        MessageType.VIDEO,
        MessageType.DOCUMENT,
        MessageType.STICKER,
    }
)


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """One item of ``value.messages[]``: something a customer sent to one of our numbers."""

    phone_number_id: str  # our number that received it; replies go out from it
    display_phone_number: str | None = None
    wamid: str
    wa_id: str | None = None  # `from`; absent for a contact known only by user_id
    user_id: str | None = None  # `from_user_id`
    contact: ContactProfile | None = None
    timestamp: datetime  # Meta's time, aware UTC; order by this, never by arrival
    type: MessageType
    original_type: str  # Meta's type string, kept when `type` is UNSUPPORTED
    text: str | None = None  # what the customer typed or chose: body, reply title, caption
    summary: str  # one human line for the conversation log, for every type
    reply_id: str | None = None  # button_reply/list_reply id, or a template button's payload
    reply_title: str | None = None
    reply_description: str | None = None  # list_reply only
    context_wamid: str | None = None  # the message this one answers
    context_from: str | None = None
    forwarded: bool = False
    referral: Referral | None = None
    reaction_to: str | None = None
    reaction_emoji: str | None = None  # None when a reaction is removed
    media_id: str | None = None
    mime_type: str | None = None
    filename: str | None = None  # documents
    latitude: float | None = None
    longitude: float | None = None
    location_name: str | None = None
    location_address: str | None = None
    new_wa_id: str | None = None  # system message "user_changed_number"
    errors: tuple[MetaError, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.wa_id or self.user_id):
            raise ValueError("a message needs a sender wa_id or user_id")
        require_aware(self.timestamp, "timestamp")

    @property
    def contact_key(self) -> str:
        return self.wa_id or self.user_id or ""

    @property
    def from_ad(self) -> bool:
        return self.referral is not None and self.referral.is_ad

    @classmethod
    def from_payload(
        cls,
        payload: Mapping[str, Any],
        *,
        phone_number_id: str,
        display_phone_number: str | None = None,
        contacts: Mapping[str, ContactProfile] | None = None,
    ) -> InboundMessage:
        """``contacts`` maps both wa_id and user_id to the change's ``contacts[]`` entries."""
        wamid = require_str(payload, "id")
        timestamp = parse_timestamp(payload.get("timestamp"))
        wa_id = get_str(payload, "from") or None
        user_id = get_str(payload, "from_user_id") or None
        if not (wa_id or user_id):
            raise ItemError("missing both 'from' and 'from_user_id'")
        contact = match_contact(contacts, wa_id, user_id)

        # A missing type is stored as unsupported rather than dropped: the wamid still dedupes.
        original_type = get_str(payload, "type") or ""
        mtype = MessageType.read(original_type)
        errors = MetaError.from_list(payload.get("errors"))
        context = get_dict(payload, "context")
        referral = payload.get("referral")

        details = _content(mtype, original_type, payload, errors)
        return cls(
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            wamid=wamid,
            wa_id=wa_id,
            user_id=user_id,
            contact=contact,
            timestamp=timestamp,
            type=mtype,
            original_type=original_type,
            context_wamid=get_str(context, "id"),
            context_from=get_str(context, "from"),
            forwarded=context.get("forwarded") is True
            or context.get("frequently_forwarded") is True,
            referral=Referral.from_payload(referral) if isinstance(referral, Mapping) else None,
            errors=errors,
            raw=payload,
            **details,
        )


def _content(
    mtype: MessageType,
    original_type: str,
    payload: Mapping[str, Any],
    errors: tuple[MetaError, ...],
) -> dict[str, Any]:
    """The type-specific fields of a message, ``summary`` always among them."""
    body = get_dict(payload, original_type) if original_type else {}
    match mtype:
        case MessageType.TEXT:
            text = get_str(body, "body")
            return {"text": text, "summary": text or "[text]"}
        case MessageType.INTERACTIVE:
            kind = get_str(body, "type") or ""
            reply = get_dict(body, kind) if kind else {}
            title = get_str(reply, "title") or get_str(reply, "body")
            label = {"button_reply": "button reply", "list_reply": "list reply"}.get(
                kind, f"interactive {kind}".strip()
            )
            return {
                "text": title,
                "reply_id": get_str(reply, "id"),
                "reply_title": title,
                "reply_description": get_str(reply, "description"),
                "summary": _line(f"[{label}]", title),
            }
        case MessageType.BUTTON:
            text = get_str(body, "text")
            return {
                "text": text,
                "reply_id": get_str(body, "payload"),
                "reply_title": text,
                "summary": _line("[quick reply]", text),
            }
        case MessageType.REACTION:
            target = get_str(body, "message_id")
            emoji = get_str(body, "emoji") or None  # "" or absent: the reaction was removed
            if emoji:
                summary = f"[reaction {emoji} to {target}]"
            else:
                summary = f"[reaction removed from {target}]"
            return {"reaction_to": target, "reaction_emoji": emoji, "summary": summary}
        case MessageType.IMAGE | MessageType.AUDIO | MessageType.VIDEO | MessageType.DOCUMENT:
            caption = get_str(body, "caption")
            filename = get_str(body, "filename")
            return {
                "text": caption,
                "media_id": get_str(body, "id"),
                "mime_type": get_str(body, "mime_type"),
                "filename": filename,
                "summary": _line(f"[{mtype}]", caption or filename),
            }
        case MessageType.STICKER:
            return {
                "media_id": get_str(body, "id"),
                "mime_type": get_str(body, "mime_type"),
                "summary": "[sticker]",
            }
        case MessageType.LOCATION:
            lat, lon = get_float(body, "latitude"), get_float(body, "longitude")
            name, address = get_str(body, "name"), get_str(body, "address")
            where = f"{lat}, {lon}" if lat is not None and lon is not None else None
            label = ", ".join(part for part in (name, address) if part) or None
            return {
                "latitude": lat,
                "longitude": lon,
                "location_name": name,
                "location_address": address,
                "summary": _line("[location]", where, label),
            }
        case MessageType.CONTACTS:
            cards = payload.get("contacts")
            names = [
                get_str(get_dict(card, "name"), "formatted_name") or "?"
                for card in (cards if isinstance(cards, list) else [])
                if isinstance(card, Mapping)
            ]
            return {"summary": _line("[contacts]", ", ".join(names) or None)}
        case MessageType.ORDER:
            items = body.get("product_items")
            count = len(items) if isinstance(items, list) else 0
            plural = "item" if count == 1 else "items"
            return {"summary": _line("[order]", f"{count} {plural}", get_str(body, "text"))}
        case MessageType.SYSTEM:
            return {
                "new_wa_id": get_str(body, "new_wa_id") or get_str(body, "wa_id"),
                "summary": _line("[system]", get_str(body, "body")),
            }
        case _:
            reason = errors[0].title if errors and errors[0].title else original_type or "no type"
            return {"summary": f"[unsupported: {reason}]"}


def _line(label: str, *parts: str | None) -> str:
    return " ".join([label, *(part for part in parts if part)])


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """One item of ``value.statuses[]``: what happened to a message we sent."""

    phone_number_id: str
    wamid: str
    status: StatusType
    timestamp: datetime  # Meta's time, aware UTC: a `read` may arrive before `delivered`
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    conversation_id: str | None = None
    conversation_origin: str | None = None
    pricing_category: str | None = None
    billable: bool | None = None
    errors: tuple[MetaError, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        require_aware(self.timestamp, "timestamp")

    @property
    def error_codes(self) -> tuple[int, ...]:
        return tuple(error.code for error in self.errors if error.code is not None)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, phone_number_id: str) -> Status:
        wamid = require_str(payload, "id")
        value = require_str(payload, "status")
        try:
            status = StatusType(value)
        except ValueError:
            raise ItemError(f"unknown 'status': {value!r}") from None
        conversation = get_dict(payload, "conversation")
        pricing = get_dict(payload, "pricing")
        billable = pricing.get("billable")
        return cls(
            phone_number_id=phone_number_id,
            wamid=wamid,
            status=status,
            timestamp=parse_timestamp(payload.get("timestamp")),
            recipient_id=get_str(payload, "recipient_id"),
            recipient_user_id=get_str(payload, "recipient_user_id"),
            conversation_id=get_str(conversation, "id"),
            conversation_origin=get_str(get_dict(conversation, "origin"), "type"),
            pricing_category=get_str(pricing, "category"),
            billable=billable if isinstance(billable, bool) else None,
            errors=MetaError.from_list(payload.get("errors")),
            raw=payload,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class PreferenceUpdate:
    """One item of ``value.user_preferences[]``: a marketing stop/resume made inside WhatsApp."""

    phone_number_id: str
    wa_id: str | None = None
    user_id: str | None = None
    category: str  # e.g. "marketing_messages"
    value: str  # "stop" | "resume"; other strings are kept as sent
    detail: str | None = None
    timestamp: datetime
    contact: ContactProfile | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.wa_id or self.user_id):
            raise ValueError("a preference update needs a wa_id or a user_id")
        require_aware(self.timestamp, "timestamp")

    @property
    def contact_key(self) -> str:
        return self.wa_id or self.user_id or ""

    @property
    def is_stop(self) -> bool:
        return self.value == "stop"

    @classmethod
    def from_payload(
        cls,
        payload: Mapping[str, Any],
        *,
        phone_number_id: str,
        contacts: Mapping[str, ContactProfile] | None = None,
    ) -> PreferenceUpdate:
        wa_id = get_str(payload, "wa_id") or None
        user_id = get_str(payload, "user_id") or None
        if not (wa_id or user_id):
            raise ItemError("missing both 'wa_id' and 'user_id'")
        return cls(
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            user_id=user_id,
            category=require_str(payload, "category"),
            value=require_str(payload, "value"),
            detail=get_str(payload, "detail"),
            timestamp=parse_timestamp(payload.get("timestamp")),
            contact=match_contact(contacts, wa_id, user_id),
            raw=payload,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class OtherChange:
    """Something in the body that is valid but not handled; stored and acknowledged as it is.

    ``raw`` is always a change object (``{"field", "value"}``) that reads on its own, and ``path``
    says where the unhandled part sits in the body. Three cases:
    - a change whose field is neither ``messages`` nor ``user_preferences``
      (``path`` = ``entry[i].changes[j]``; ``raw`` = that whole change);
    - an unknown key in a handled change's value, e.g. a value-level ``errors`` array
      (``path`` = ``...value.<key>``; ``raw`` = the change with only that key beside
      ``messaging_product`` and ``metadata``);
    - a status whose ``status`` string is not a :class:`StatusType`, so it is never applied
      (``path`` = ``...value.statuses[k]``; ``raw`` = the change with ``statuses: [that item]``).
    """

    entry_id: str | None
    field: str
    path: str  # where raw sits in the body
    note: str  # why it is here, for logs
    errors: tuple[MetaError, ...] = ()  # read from raw's `errors`, where it has any
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)


@dataclass(frozen=True, slots=True, kw_only=True)
class MalformedItem:
    """A part of the body that cannot be read; the rest of the body is still parsed."""

    entry_id: str | None
    field: str | None
    path: str
    problem: str  # starts with the path, e.g. "entry[0].changes[1].value.messages[3]: missing 'id'"
    raw: Any = field(default=None, compare=False, repr=False)  # the unreadable JSON, as it came


@dataclass(frozen=True, slots=True, kw_only=True)
class WebhookBody:
    """Everything in one webhook POST, each tuple in body order."""

    object: str
    messages: tuple[InboundMessage, ...] = ()
    statuses: tuple[Status, ...] = ()
    preferences: tuple[PreferenceUpdate, ...] = ()
    others: tuple[OtherChange, ...] = ()
    malformed: tuple[MalformedItem, ...] = ()
    contacts: tuple[ContactProfile, ...] = ()  # every contact seen, one per key
