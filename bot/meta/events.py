"""Typed, frozen events for everything a WhatsApp Cloud API webhook body can carry.

Each event is built from one JSON item by its ``from_payload`` classmethod and keeps that item as
``raw`` so nothing is lost when it is stored; ``raw`` takes no part in equality, hashing or repr,
so two deliveries of the same update compare equal and logs stay readable.

``from_payload`` raises :class:`ItemError` (a ``ValueError``) naming what is missing or wrong,
relative to the item; the parser prefixes the item's path in the body.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any


class ItemError(ValueError):
    """One message, status, preference or contact in a body cannot be read."""


class MessageType(StrEnum):
    TEXT = "text"
    INTERACTIVE = "interactive"
    BUTTON = "button"  # a quick-reply button on a template
    REACTION = "reaction"
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"
    LOCATION = "location"
    CONTACTS = "contacts"
    ORDER = "order"
    SYSTEM = "system"
    UNSUPPORTED = "unsupported"  # also every type string not listed here


MEDIA_TYPES: frozenset[MessageType] = frozenset(
    {
        MessageType.IMAGE,
        MessageType.AUDIO,
        MessageType.VIDEO,
        MessageType.DOCUMENT,
        MessageType.STICKER,
    }
)


class StatusType(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    PLAYED = "played"


# --- small readers: Meta's JSON is untrusted, so a wrong type reads as absent, never crashes ---


def _get_dict(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    return value if isinstance(value, Mapping) else {}


def _get_str(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) else None


def _get_float(payload: Mapping[str, Any], key: str) -> float | None:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def _require_str(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if value is None:
        raise ItemError(f"missing '{key}'")
    if not isinstance(value, str) or not value:
        raise ItemError(f"'{key}' is not a non-empty string: {value!r}")
    return value


def parse_timestamp(value: object, key: str = "timestamp") -> datetime:
    """Meta's epoch seconds, a string in messages and statuses, an int in user_preferences."""
    if value is None:
        raise ItemError(f"missing '{key}'")
    if isinstance(value, bool):  # bool is an int subclass; True is not a time
        raise ItemError(f"'{key}' is not epoch seconds: {value!r}")
    if isinstance(value, int):
        seconds = value
    # isascii: str.isdigit() accepts Arabic-Indic digits, which int() would happily read.
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        seconds = int(value)
    else:
        raise ItemError(f"'{key}' is not epoch seconds: {value!r}")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ItemError(f"'{key}' is out of range: {value!r}") from None


def _match(
    contacts: Mapping[str, ContactProfile] | None, wa_id: str | None, user_id: str | None
) -> ContactProfile | None:
    """The change's contact for this sender, by wa_id first, then by user_id."""
    if not contacts:
        return None
    found = contacts.get(wa_id) if wa_id else None
    if found is None and user_id:
        found = contacts.get(user_id)
    return found


def _require_aware(value: datetime, name: str) -> None:
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


# --- parts ---


@dataclass(frozen=True, slots=True, kw_only=True)
class MetaError:
    """One item of Meta's ``errors[]`` (on a message, a status or a change)."""

    code: int | None = None
    title: str | None = None
    message: str | None = None
    details: str | None = None  # error_data.details

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> MetaError:
        code = payload.get("code")
        if isinstance(code, str) and code.isascii() and code.isdigit():
            code = int(code)
        return cls(
            code=code if isinstance(code, int) and not isinstance(code, bool) else None,
            title=_get_str(payload, "title"),
            message=_get_str(payload, "message"),
            details=_get_str(_get_dict(payload, "error_data"), "details"),
        )

    @classmethod
    def from_list(cls, value: object) -> tuple[MetaError, ...]:
        """Every readable item of an ``errors`` array; anything else reads as no errors."""
        if not isinstance(value, list):
            return ()
        return tuple(cls.from_payload(item) for item in value if isinstance(item, Mapping))


@dataclass(frozen=True, slots=True, kw_only=True)
class ContactProfile:
    """An entry of a change's ``contacts[]``: who wrote, as Meta knows them."""

    wa_id: str | None = None
    user_id: str | None = None  # business-scoped user id; the only id when wa_id is absent
    name: str | None = None
    username: str | None = None
    country_code: str | None = None

    def __post_init__(self) -> None:
        if not (self.wa_id or self.user_id):
            raise ValueError("a contact needs a wa_id or a user_id")

    @property
    def key(self) -> str:
        """How contacts are keyed: wa_id, or user_id where the payload carries no wa_id."""
        return self.wa_id or self.user_id or ""

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> ContactProfile:
        wa_id = _get_str(payload, "wa_id") or None
        user_id = _get_str(payload, "user_id") or None
        if not (wa_id or user_id):
            raise ItemError("missing both 'wa_id' and 'user_id'")
        profile = _get_dict(payload, "profile")
        return cls(
            wa_id=wa_id,
            user_id=user_id,
            name=_get_str(profile, "name"),
            username=_get_str(profile, "username"),
            country_code=_get_str(payload, "country_code"),
        )

    def merged(self, other: ContactProfile) -> ContactProfile:
        """This profile with its missing fields filled from ``other`` (same person seen twice)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            if value is None:
                values[name] = getattr(other, name)
        return ContactProfile(**values)


@dataclass(frozen=True, slots=True, kw_only=True)
class Referral:
    """Where a conversation started: a click-to-WhatsApp ad or a post."""

    source_type: str | None = None  # "ad" | "post" | ...
    source_id: str | None = None
    source_url: str | None = None
    headline: str | None = None
    body: str | None = None
    media_type: str | None = None
    ctwa_clid: str | None = None

    @property
    def is_ad(self) -> bool:
        # A message from an ad is never consent, however it is worded.
        return self.source_type == "ad"

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Referral:
        return cls(
            source_type=_get_str(payload, "source_type"),
            source_id=_get_str(payload, "source_id"),
            source_url=_get_str(payload, "source_url"),
            headline=_get_str(payload, "headline"),
            body=_get_str(payload, "body"),
            media_type=_get_str(payload, "media_type"),
            ctwa_clid=_get_str(payload, "ctwa_clid"),
        )


# --- events ---


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
        _require_aware(self.timestamp, "timestamp")

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
        wamid = _require_str(payload, "id")
        timestamp = parse_timestamp(payload.get("timestamp"))
        wa_id = _get_str(payload, "from") or None
        user_id = _get_str(payload, "from_user_id") or None
        if not (wa_id or user_id):
            raise ItemError("missing both 'from' and 'from_user_id'")
        contact = _match(contacts, wa_id, user_id)

        # A missing type is stored as unsupported rather than dropped: the wamid still dedupes.
        original_type = _get_str(payload, "type") or ""
        try:
            mtype = MessageType(original_type)
        except ValueError:
            mtype = MessageType.UNSUPPORTED
        errors = MetaError.from_list(payload.get("errors"))
        context = _get_dict(payload, "context")
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
            context_wamid=_get_str(context, "id"),
            context_from=_get_str(context, "from"),
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
    body = _get_dict(payload, original_type) if original_type else {}
    match mtype:
        case MessageType.TEXT:
            text = _get_str(body, "body")
            return {"text": text, "summary": text or "[text]"}
        case MessageType.INTERACTIVE:
            kind = _get_str(body, "type") or ""
            reply = _get_dict(body, kind) if kind else {}
            title = _get_str(reply, "title") or _get_str(reply, "body")
            label = {"button_reply": "button reply", "list_reply": "list reply"}.get(
                kind, f"interactive {kind}".strip()
            )
            return {
                "text": title,
                "reply_id": _get_str(reply, "id"),
                "reply_title": title,
                "reply_description": _get_str(reply, "description"),
                "summary": _line(f"[{label}]", title),
            }
        case MessageType.BUTTON:
            text = _get_str(body, "text")
            return {
                "text": text,
                "reply_id": _get_str(body, "payload"),
                "reply_title": text,
                "summary": _line("[quick reply]", text),
            }
        case MessageType.REACTION:
            target = _get_str(body, "message_id")
            emoji = _get_str(body, "emoji") or None  # "" or absent: the reaction was removed
            if emoji:
                summary = f"[reaction {emoji} to {target}]"
            else:
                summary = f"[reaction removed from {target}]"
            return {"reaction_to": target, "reaction_emoji": emoji, "summary": summary}
        case MessageType.IMAGE | MessageType.AUDIO | MessageType.VIDEO | MessageType.DOCUMENT:
            caption = _get_str(body, "caption")
            filename = _get_str(body, "filename")
            return {
                "text": caption,
                "media_id": _get_str(body, "id"),
                "mime_type": _get_str(body, "mime_type"),
                "filename": filename,
                "summary": _line(f"[{mtype}]", caption or filename),
            }
        case MessageType.STICKER:
            return {
                "media_id": _get_str(body, "id"),
                "mime_type": _get_str(body, "mime_type"),
                "summary": "[sticker]",
            }
        case MessageType.LOCATION:
            lat, lon = _get_float(body, "latitude"), _get_float(body, "longitude")
            name, address = _get_str(body, "name"), _get_str(body, "address")
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
                _get_str(_get_dict(card, "name"), "formatted_name") or "?"
                for card in (cards if isinstance(cards, list) else [])
                if isinstance(card, Mapping)
            ]
            return {"summary": _line("[contacts]", ", ".join(names) or None)}
        case MessageType.ORDER:
            items = body.get("product_items")
            count = len(items) if isinstance(items, list) else 0
            plural = "item" if count == 1 else "items"
            return {"summary": _line("[order]", f"{count} {plural}", _get_str(body, "text"))}
        case MessageType.SYSTEM:
            return {
                "new_wa_id": _get_str(body, "new_wa_id") or _get_str(body, "wa_id"),
                "summary": _line("[system]", _get_str(body, "body")),
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
        _require_aware(self.timestamp, "timestamp")

    @property
    def error_codes(self) -> tuple[int, ...]:
        return tuple(error.code for error in self.errors if error.code is not None)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, phone_number_id: str) -> Status:
        wamid = _require_str(payload, "id")
        value = _require_str(payload, "status")
        try:
            status = StatusType(value)
        except ValueError:
            raise ItemError(f"unknown 'status': {value!r}") from None
        conversation = _get_dict(payload, "conversation")
        pricing = _get_dict(payload, "pricing")
        billable = pricing.get("billable")
        return cls(
            phone_number_id=phone_number_id,
            wamid=wamid,
            status=status,
            timestamp=parse_timestamp(payload.get("timestamp")),
            recipient_id=_get_str(payload, "recipient_id"),
            recipient_user_id=_get_str(payload, "recipient_user_id"),
            conversation_id=_get_str(conversation, "id"),
            conversation_origin=_get_str(_get_dict(conversation, "origin"), "type"),
            pricing_category=_get_str(pricing, "category"),
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
        _require_aware(self.timestamp, "timestamp")

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
        wa_id = _get_str(payload, "wa_id") or None
        user_id = _get_str(payload, "user_id") or None
        if not (wa_id or user_id):
            raise ItemError("missing both 'wa_id' and 'user_id'")
        return cls(
            phone_number_id=phone_number_id,
            wa_id=wa_id,
            user_id=user_id,
            category=_require_str(payload, "category"),
            value=_require_str(payload, "value"),
            detail=_get_str(payload, "detail"),
            timestamp=parse_timestamp(payload.get("timestamp")),
            contact=_match(contacts, wa_id, user_id),
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
