"""What a customer sent, one typed part per kind: text, reply, reaction, media, location, ...

A message carries exactly one of these parts, the one for its type, read by :func:`read_content`.
Each part reads its JSON object tolerantly (a wrong type reads as absent), knows the message type
it belongs to, and gives the one-line ``summary`` the conversation log shows for it.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

from bot.meta.envelope import MessageType
from bot.meta.readers import get_dict, get_float, get_list, get_str


class MediaKind(StrEnum):
    IMAGE = "image"
    AUDIO = "audio"
    VIDEO = "video"
    DOCUMENT = "document"
    STICKER = "sticker"


MEDIA_TYPES: frozenset[MessageType] = frozenset(MessageType(kind) for kind in MediaKind)


class ReplyKind(StrEnum):
    BUTTON = "button_reply"  # a reply button of an interactive message
    LIST = "list_reply"  # a row of an interactive list
    QUICK_REPLY = "quick_reply"  # a template's quick-reply button (message type "button")
    OTHER = "other"  # any other interactive answer, e.g. a WhatsApp Flow's "nfm_reply"


_INTERACTIVE_KINDS = {"button_reply": ReplyKind.BUTTON, "list_reply": ReplyKind.LIST}
_REPLY_LABELS = {
    ReplyKind.BUTTON: "button reply",
    ReplyKind.LIST: "list reply",
    ReplyKind.QUICK_REPLY: "quick reply",
}


def _line(label: str, *parts: str | None) -> str:
    return " ".join([label, *(part for part in parts if part)])


@dataclass(frozen=True, slots=True, kw_only=True)
class Text:
    """A typed message."""

    body: str | None = None  # None when Meta's body is missing or not a string

    @property
    def message_type(self) -> MessageType:
        return MessageType.TEXT

    @property
    def summary(self) -> str:
        return self.body or "[text]"

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Text:
        return cls(body=get_str(payload, "body"))


@dataclass(frozen=True, slots=True, kw_only=True)
class ReplyChoice:
    """A tap on something we offered: a reply button, a list row or a template's quick reply."""

    kind: ReplyKind
    id: str | None = None  # the button or row id we set; for a quick reply, its payload
    title: str | None = None  # what the customer saw and tapped
    description: str | None = None  # list rows only
    other_kind: str | None = None  # Meta's interactive type when kind is OTHER
    # A WhatsApp Flow's answer (nfm_reply): the form's fields as sent, each value as JSON text,
    # and the flow token we sent the Flow with, which Meta returns among them.
    flow_fields: tuple[tuple[str, str], ...] = ()
    flow_token: str | None = None

    @property
    def message_type(self) -> MessageType:
        if self.kind is ReplyKind.QUICK_REPLY:
            return MessageType.BUTTON
        return MessageType.INTERACTIVE

    @property
    def summary(self) -> str:
        label = _REPLY_LABELS.get(self.kind) or f"interactive {self.other_kind or ''}".strip()
        fields = ", ".join(f"{key}={value}" for key, value in self.flow_fields)
        return _line(f"[{label}]", self.title, f"({fields})" if fields else None)

    @classmethod
    def from_interactive(cls, payload: Mapping[str, Any]) -> ReplyChoice:
        """An ``interactive`` object: its ``type`` names the key that holds the answer."""
        meta_kind = get_str(payload, "type") or ""
        answer = get_dict(payload, meta_kind) if meta_kind else {}
        kind = _INTERACTIVE_KINDS.get(meta_kind, ReplyKind.OTHER)
        fields = _flow_fields(get_str(answer, "response_json"))
        return cls(
            kind=kind,
            id=get_str(answer, "id"),
            # A Flow's answer has no title; its body ("Sent") is what the customer saw.
            title=get_str(answer, "title") or get_str(answer, "body"),
            description=get_str(answer, "description"),
            other_kind=meta_kind if kind is ReplyKind.OTHER else None,
            flow_fields=fields,
            flow_token=_flow_token(fields),
        )

    @classmethod
    def from_button(cls, payload: Mapping[str, Any]) -> ReplyChoice:
        """A ``button`` object: a template's quick reply, {payload, text}."""
        return cls(
            kind=ReplyKind.QUICK_REPLY,
            id=get_str(payload, "payload"),
            title=get_str(payload, "text"),
        )


def _flow_fields(response_json: str | None) -> tuple[tuple[str, str], ...]:
    """A Flow's ``response_json`` (a JSON object in a string), kept so its answers are not lost."""
    try:
        document = json.loads(response_json) if response_json else None
    except ValueError:
        return ()
    if not isinstance(document, dict):
        return ()
    return tuple(
        (str(key), json.dumps(value, ensure_ascii=False)) for key, value in document.items()
    )


def _flow_token(fields: tuple[tuple[str, str], ...]) -> str | None:
    token = json.loads(dict(fields).get("flow_token", "null"))
    return token if isinstance(token, str) else None


@dataclass(frozen=True, slots=True, kw_only=True)
class Reaction:
    """An emoji put on (or taken off) one of the messages in the chat."""

    message_id: str | None = None  # the wamid reacted to
    emoji: str | None = None  # None when the reaction was removed

    @property
    def message_type(self) -> MessageType:
        return MessageType.REACTION

    @property
    def removed(self) -> bool:
        return self.emoji is None

    @property
    def summary(self) -> str:
        if self.emoji:
            return f"[reaction {self.emoji} to {self.message_id}]"
        return f"[reaction removed from {self.message_id}]"

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Reaction:
        return cls(
            message_id=get_str(payload, "message_id"),
            emoji=get_str(payload, "emoji") or None,  # "" or absent: the reaction was removed
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Media:
    """An image, audio, video, document or sticker; the file itself stays with Meta."""

    kind: MediaKind
    id: str | None = None  # Meta's media id, to download the file
    mime_type: str | None = None
    filename: str | None = None  # documents
    caption: str | None = None

    @property
    def message_type(self) -> MessageType:
        return MessageType(self.kind)

    @property
    def summary(self) -> str:
        return _line(f"[{self.kind}]", self.caption or self.filename)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, kind: MediaKind) -> Media:
        media_id, mime_type = get_str(payload, "id"), get_str(payload, "mime_type")
        if kind is MediaKind.STICKER:
            # A sticker has no caption or name; none is read, so none can pass for words.
            return cls(kind=kind, id=media_id, mime_type=mime_type)
        return cls(
            kind=kind,
            id=media_id,
            mime_type=mime_type,
            filename=get_str(payload, "filename"),
            caption=get_str(payload, "caption"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Location:
    """A shared place."""

    latitude: float | None = None
    longitude: float | None = None
    name: str | None = None
    address: str | None = None

    @property
    def message_type(self) -> MessageType:
        return MessageType.LOCATION

    @property
    def summary(self) -> str:
        where = None
        if self.latitude is not None and self.longitude is not None:
            where = f"{self.latitude}, {self.longitude}"
        label = ", ".join(part for part in (self.name, self.address) if part) or None
        return _line("[location]", where, label)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Location:
        return cls(
            latitude=get_float(payload, "latitude"),
            longitude=get_float(payload, "longitude"),
            name=get_str(payload, "name"),
            address=get_str(payload, "address"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SharedContacts:
    """Contact cards the customer shared (not the sender's own profile)."""

    names: tuple[str | None, ...] = ()  # each card's formatted name, None where it has none

    @property
    def message_type(self) -> MessageType:
        return MessageType.CONTACTS

    @property
    def summary(self) -> str:
        return _line("[contacts]", ", ".join(name or "?" for name in self.names) or None)

    @classmethod
    def from_list(cls, cards: list[Any]) -> SharedContacts:
        """The message's top-level ``contacts`` array; an item that is not an object is skipped."""
        return cls(
            names=tuple(
                get_str(get_dict(card, "name"), "formatted_name")
                for card in cards
                if isinstance(card, Mapping)
            )
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Order:
    """A cart sent from a catalog."""

    catalog_id: str | None = None
    item_count: int = 0
    text: str | None = None  # the customer's note with the order

    @property
    def message_type(self) -> MessageType:
        return MessageType.ORDER

    @property
    def summary(self) -> str:
        items = "item" if self.item_count == 1 else "items"
        return _line("[order]", f"{self.item_count} {items}", self.text)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Order:
        return cls(
            catalog_id=get_str(payload, "catalog_id"),
            item_count=len(get_list(payload, "product_items")),
            text=get_str(payload, "text"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class SystemNotice:
    """WhatsApp telling us about the customer, e.g. that they changed number or user id."""

    kind: str | None = None  # `system.type`, e.g. "user_changed_number", kept as sent
    body: str | None = None  # WhatsApp's sentence, e.g. "User X changed from A to B"
    new_wa_id: str | None = None  # user_changed_number: the new number
    user_id: str | None = None  # the user id now in force
    previous_user_id: str | None = None
    parent_user_id: str | None = None  # user_changed_user_id: the parent id now in force
    previous_parent_user_id: str | None = None

    @property
    def message_type(self) -> MessageType:
        return MessageType.SYSTEM

    @property
    def summary(self) -> str:
        return _line("[system]", self.body)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> SystemNotice:
        return cls(
            kind=get_str(payload, "type"),
            body=get_str(payload, "body"),
            # Older payloads name the new number `new_wa_id`; current ones `wa_id`.
            new_wa_id=get_str(payload, "new_wa_id") or get_str(payload, "wa_id"),
            user_id=get_str(payload, "user_id"),
            previous_user_id=get_str(payload, "previous_user_id"),
            parent_user_id=get_str(payload, "parent_user_id"),
            previous_parent_user_id=get_str(payload, "previous_parent_user_id"),
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Revoke:
    """The customer deleted one of their messages; kept as a record, never read as words."""

    original_message_id: str | None = None

    @property
    def message_type(self) -> MessageType:
        return MessageType.REVOKE

    @property
    def summary(self) -> str:
        return f"[deleted {self.original_message_id or 'a message'}]"

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Revoke:
        return cls(original_message_id=get_str(payload, "original_message_id"))


@dataclass(frozen=True, slots=True, kw_only=True)
class WelcomeRequest:
    """The customer opened the chat for the first time: the moment to ask (it carries nothing)."""

    @property
    def message_type(self) -> MessageType:
        return MessageType.REQUEST_WELCOME

    @property
    def summary(self) -> str:
        return "[opened the chat]"


Content = (
    Text
    | ReplyChoice
    | Reaction
    | Media
    | Location
    | SharedContacts
    | Order
    | SystemNotice
    | Revoke
    | WelcomeRequest
)


def read_content(mtype: MessageType, payload: Mapping[str, Any]) -> Content | None:
    """The part for a message of type ``mtype``; None for an unsupported message."""
    body = get_dict(payload, mtype.value)
    match mtype:
        case MessageType.TEXT:
            return Text.from_payload(body)
        case MessageType.INTERACTIVE:
            return ReplyChoice.from_interactive(body)
        case MessageType.BUTTON:
            return ReplyChoice.from_button(body)
        case MessageType.REACTION:
            return Reaction.from_payload(body)
        case (
            MessageType.IMAGE
            | MessageType.AUDIO
            | MessageType.VIDEO
            | MessageType.DOCUMENT
            | MessageType.STICKER
        ):
            return Media.from_payload(body, kind=MediaKind(mtype))
        case MessageType.LOCATION:
            return Location.from_payload(body)
        case MessageType.CONTACTS:
            # Shared cards sit beside the type, in the message's own `contacts` array.
            return SharedContacts.from_list(get_list(payload, "contacts"))
        case MessageType.ORDER:
            return Order.from_payload(body)
        case MessageType.SYSTEM:
            return SystemNotice.from_payload(body)
        case MessageType.REVOKE:
            return Revoke.from_payload(body)
        case MessageType.REQUEST_WELCOME:
            return WelcomeRequest()
        case _:
            return None
