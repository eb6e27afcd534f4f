"""Meta's WhatsApp Cloud API webhook bodies as typed, frozen events.

`parse_body` is the only entry point for raw bytes; the modules of this package are the only ones
that read raw payload dicts. `events` holds the events, `envelope` their shared parts (sender,
referral, errors, the type vocabularies), `readers` the tolerant field readers.
`bot.dev.simulate` builds bodies the way Meta sends them.
"""

from bot.meta.envelope import (
    ContactProfile,
    MessageType,
    MetaError,
    Referral,
    StatusType,
)
from bot.meta.events import (
    MEDIA_TYPES,
    InboundMessage,
    MalformedItem,
    OtherChange,
    PreferenceUpdate,
    Status,
    WebhookBody,
)
from bot.meta.parser import PayloadError, parse_body
from bot.meta.readers import ItemError, parse_timestamp

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
