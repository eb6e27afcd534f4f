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
    Context,
    MessageType,
    MetaError,
    Referral,
    StatusType,
    match_contact,
)
from bot.meta.parts import (
    Content,
    Location,
    Media,
    Order,
    Reaction,
    ReplyChoice,
    Revoke,
    SharedContacts,
    SystemNotice,
    Text,
    WelcomeRequest,
    read_content,
)
from bot.meta.readers import (
    ItemError,
    get_bool,
    get_dict,
    get_str,
    parse_timestamp,
    require_aware,
    require_str,
)

# A dict lookup: asking the enum for a value costs several times as much, once per status.
_STATUS_TYPES = {status.value: status for status in StatusType}


@dataclass(frozen=True, slots=True, kw_only=True)
class InboundMessage:
    """One item of ``value.messages[]``: something a customer sent to one of our numbers.

    The envelope says who sent it, when, to which of our numbers and in answer to what. What
    they sent is in exactly one content part, the one for ``type``; an unsupported message has
    none. ``content_text`` (what the dialogue reads) and ``summary`` (what the conversation log
    shows) are derived from that part.
    """

    phone_number_id: str  # our number that received it; replies go out from it
    display_phone_number: str | None = None
    wamid: str
    wa_id: str | None = None  # `from`; absent for a contact known only by user_id
    user_id: str | None = None  # `from_user_id`
    contact: ContactProfile | None = None
    timestamp: datetime  # Meta's time, aware UTC; order by this, never by arrival
    type: MessageType
    original_type: str  # Meta's type string, kept when `type` is UNSUPPORTED
    context: Context | None = None
    referral: Referral | None = None
    errors: tuple[MetaError, ...] = ()
    # Sent in a group chat the business is part of: never the private dialogue (C31).
    group_id: str | None = None
    # An edit of an earlier message (`type` "edit"): `type` and the content are the new message.
    edit_of: str | None = None
    # The content: only the part for `type` is set.
    text: Text | None = None
    reply: ReplyChoice | None = None  # interactive (button, list, ...) or a template's button
    reaction: Reaction | None = None
    media: Media | None = None  # image, audio, video, document, sticker
    location: Location | None = None
    shared_contacts: SharedContacts | None = None
    order: Order | None = None
    system: SystemNotice | None = None
    revoke: Revoke | None = None
    welcome: WelcomeRequest | None = None
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        if not (self.wa_id or self.user_id):
            raise ValueError("a message needs a sender wa_id or user_id")
        require_aware(self.timestamp, "timestamp")
        parts = self._parts()
        expected = None if self.type is MessageType.UNSUPPORTED else self.type
        if not parts and expected is not None:
            raise ValueError(f"a {self.type} message needs its content part")
        if len(parts) > 1 or (parts and parts[0].message_type != expected):
            kinds = ", ".join(type(part).__name__ for part in parts)
            raise ValueError(f"a {self.type} message cannot carry {kinds}")

    def _parts(self) -> list[Content]:
        every = (
            self.text,
            self.reply,
            self.reaction,
            self.media,
            self.location,
            self.shared_contacts,
            self.order,
            self.system,
            self.revoke,
            self.welcome,
        )
        return [part for part in every if part is not None]

    @property
    def content(self) -> Content | None:
        """The one content part; None for an unsupported message."""
        parts = self._parts()
        return parts[0] if parts else None

    @property
    def contact_key(self) -> str:
        return self.wa_id or self.user_id or ""

    @property
    def content_text(self) -> str | None:
        """What the customer typed or chose, as the dialogue reads it.

        A text's body, the title of the reply they tapped, or a media caption; None for
        everything else (a reaction or a sticker says nothing the dialogue could act on).
        """
        match self.content:
            case Text(body=body):
                return body
            case ReplyChoice(title=title):
                return title
            case Media(caption=caption):
                return caption
            case _:
                return None

    @property
    def summary(self) -> str:
        """One human line for the conversation log, for every type."""
        content = self.content
        if content is not None:
            return content.summary
        first = self.errors[0].title if self.errors else None
        return f"[unsupported: {first or self.original_type or 'no type'}]"

    @property
    def reply_id(self) -> str | None:
        """The id of the button or row tapped, or a template button's payload."""
        return self.reply.id if self.reply is not None else None

    @property
    def is_edit(self) -> bool:
        """An edit, even one that does not name the message it replaces."""
        return self.original_type == "edit"

    @property
    def original_wamid(self) -> str | None:
        """The message an edit or a deletion changes."""
        return self.edit_of or (self.revoke.original_message_id if self.revoke else None)

    @property
    def context_wamid(self) -> str | None:
        """The message this one answers."""
        return self.context.wamid if self.context is not None else None

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

        # A missing type is stored as unsupported rather than dropped: the wamid still dedupes.
        original_type = get_str(payload, "type") or ""
        edit = get_dict(payload, "edit") if original_type == "edit" else {}
        # An edit is read as the message it now is; `edit_of` keeps which one it replaces.
        inner = get_dict(edit, "message") if edit else payload
        mtype = MessageType.read((get_str(inner, "type") or "") if edit else original_type)
        context = payload.get("context")
        referral = payload.get("referral")
        content = read_content(mtype, inner)
        return cls(
            phone_number_id=phone_number_id,
            display_phone_number=display_phone_number,
            wamid=wamid,
            wa_id=wa_id,
            user_id=user_id,
            contact=match_contact(contacts, wa_id, user_id),
            timestamp=timestamp,
            type=mtype,
            original_type=original_type,
            context=Context.from_payload(context) if isinstance(context, Mapping) else None,
            referral=Referral.from_payload(referral) if isinstance(referral, Mapping) else None,
            errors=MetaError.from_list(payload.get("errors")),
            group_id=get_str(payload, "group_id") or None,
            edit_of=get_str(edit, "original_message_id") or None,
            text=content if isinstance(content, Text) else None,
            reply=content if isinstance(content, ReplyChoice) else None,
            reaction=content if isinstance(content, Reaction) else None,
            media=content if isinstance(content, Media) else None,
            location=content if isinstance(content, Location) else None,
            shared_contacts=content if isinstance(content, SharedContacts) else None,
            order=content if isinstance(content, Order) else None,
            system=content if isinstance(content, SystemNotice) else None,
            revoke=content if isinstance(content, Revoke) else None,
            welcome=content if isinstance(content, WelcomeRequest) else None,
            raw=payload,
        )


@dataclass(frozen=True, slots=True, kw_only=True)
class Status:
    """One item of ``value.statuses[]``: what happened to a message we sent."""

    phone_number_id: str
    wamid: str
    status: StatusType
    timestamp: datetime  # Meta's time, aware UTC: a `read` may arrive before `delivered`
    recipient_id: str | None = None
    recipient_user_id: str | None = None
    recipient_parent_user_id: str | None = None
    # A message sent to a group (`recipient_type` "group"): `recipient_id` is the group, these
    # the participant it reached: the number if we know it, else the business-scoped user id.
    recipient_participant_id: str | None = None
    recipient_participant_user_id: str | None = None
    recipient_participant_parent_user_id: str | None = None
    conversation_id: str | None = None
    conversation_origin: str | None = None
    pricing_category: str | None = None
    billable: bool | None = None
    errors: tuple[MetaError, ...] = ()
    raw: Mapping[str, Any] = field(default_factory=dict, compare=False, repr=False)

    def __post_init__(self) -> None:
        require_aware(self.timestamp, "timestamp")

    @property
    def participant(self) -> str | None:
        """The group participant this status is about, by number, else by user id."""
        return self.recipient_participant_id or self.recipient_participant_user_id

    @property
    def error_codes(self) -> tuple[int, ...]:
        return tuple(error.code for error in self.errors if error.code is not None)

    @classmethod
    def from_payload(cls, payload: Mapping[str, Any], *, phone_number_id: str) -> Status:
        wamid = require_str(payload, "id")
        value = require_str(payload, "status")
        status = _STATUS_TYPES.get(value)
        if status is None:
            raise ItemError(f"unknown 'status': {value!r}")
        conversation = get_dict(payload, "conversation")
        pricing = get_dict(payload, "pricing")
        return cls(
            phone_number_id=phone_number_id,
            wamid=wamid,
            status=status,
            timestamp=parse_timestamp(payload.get("timestamp")),
            recipient_id=get_str(payload, "recipient_id"),
            recipient_user_id=get_str(payload, "recipient_user_id"),
            recipient_parent_user_id=get_str(payload, "recipient_parent_user_id"),
            recipient_participant_id=get_str(payload, "recipient_participant_id"),
            recipient_participant_user_id=get_str(payload, "recipient_participant_user_id"),
            recipient_participant_parent_user_id=get_str(
                payload, "recipient_participant_parent_user_id"
            ),
            conversation_id=get_str(conversation, "id"),
            conversation_origin=get_str(get_dict(conversation, "origin"), "type"),
            pricing_category=get_str(pricing, "category"),
            billable=get_bool(pricing, "billable"),
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
