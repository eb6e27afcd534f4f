"""The parts around an event's content: its type, sender, context, referral and errors.

Each part is read from its JSON object by ``from_payload`` and never raises for a wrong type
inside it: what cannot be read is absent. Only :class:`ContactProfile` refuses an item, one
that names nobody.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, fields
from enum import StrEnum
from typing import Any

from bot.meta.readers import ItemError, get_dict, get_str


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

    @classmethod
    def read(cls, value: str) -> MessageType:
        """Meta's type string; one this code does not know is unsupported, never an error."""
        try:
            return cls(value)
        except ValueError:
            return cls.UNSUPPORTED


class StatusType(StrEnum):
    SENT = "sent"
    DELIVERED = "delivered"
    READ = "read"
    FAILED = "failed"
    PLAYED = "played"


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
            title=get_str(payload, "title"),
            message=get_str(payload, "message"),
            details=get_str(get_dict(payload, "error_data"), "details"),
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
    parent_user_id: str | None = None  # spans the business's linked portfolios
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
        wa_id = get_str(payload, "wa_id") or None
        user_id = get_str(payload, "user_id") or None
        if not (wa_id or user_id):
            raise ItemError("missing both 'wa_id' and 'user_id'")
        profile = get_dict(payload, "profile")
        return cls(
            wa_id=wa_id,
            user_id=user_id,
            parent_user_id=get_str(payload, "parent_user_id") or None,
            name=get_str(profile, "name"),
            username=get_str(profile, "username"),
            country_code=get_str(payload, "country_code"),
        )

    def merged(self, other: ContactProfile) -> ContactProfile:
        """This profile with its missing fields filled from ``other`` (same person seen twice)."""
        values = {f.name: getattr(self, f.name) for f in fields(self)}
        for name, value in values.items():
            if value is None:
                values[name] = getattr(other, name)
        return ContactProfile(**values)


def match_contact(
    contacts: Mapping[str, ContactProfile] | None, wa_id: str | None, user_id: str | None
) -> ContactProfile | None:
    """The change's contact for this sender, by wa_id first, then by user_id."""
    if not contacts:
        return None
    found = contacts.get(wa_id) if wa_id else None
    if found is None and user_id:
        found = contacts.get(user_id)
    return found


@dataclass(frozen=True, slots=True, kw_only=True)
class Context:
    """A message's ``context``: the message it answers, and whether it was forwarded."""

    wamid: str | None = None  # `id`: the message this one answers; none for a forward
    from_: str | None = None  # `from`: who sent that message (our number, for a prompt)
    forwarded: bool = False  # `forwarded` or `frequently_forwarded`

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any]) -> Context:
        return cls(
            wamid=get_str(payload, "id"),
            from_=get_str(payload, "from"),
            forwarded=payload.get("forwarded") is True
            or payload.get("frequently_forwarded") is True,
        )


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
            source_type=get_str(payload, "source_type"),
            source_id=get_str(payload, "source_id"),
            source_url=get_str(payload, "source_url"),
            headline=get_str(payload, "headline"),
            body=get_str(payload, "body"),
            media_type=get_str(payload, "media_type"),
            ctwa_clid=get_str(payload, "ctwa_clid"),
        )
