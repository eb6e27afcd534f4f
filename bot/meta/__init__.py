"""Meta's WhatsApp Cloud API webhook bodies as typed, frozen events.

`parse_body` is the only place that reads raw payload dicts; everything downstream works with the
events defined in `bot.meta.events`. `bot.dev.simulate` builds bodies the way Meta sends them.
"""

from bot.meta.events import (
    MEDIA_TYPES,
    ContactProfile,
    InboundMessage,
    ItemError,
    MalformedItem,
    MessageType,
    MetaError,
    OtherChange,
    PreferenceUpdate,
    Referral,
    Status,
    StatusType,
    WebhookBody,
    parse_timestamp,
)
from bot.meta.parser import PayloadError, parse_body

__all__ = [
    "MEDIA_TYPES",
    "ContactProfile",
    "InboundMessage",
    "ItemError",
    "MalformedItem",
    "MessageType",
    "MetaError",
    "OtherChange",
    "PayloadError",
    "PreferenceUpdate",
    "Referral",
    "Status",
    "StatusType",
    "WebhookBody",
    "parse_body",
    "parse_timestamp",
]
