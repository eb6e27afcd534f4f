"""Meta's WhatsApp Cloud API webhook bodies as typed, frozen events.

`parse_body` is the only entry point for raw bytes; the modules of this package are the only ones
that read raw payload dicts. `events` holds the events (a message's envelope, statuses, preference
updates), `parts` what a message carries (text, reply, reaction, media, ...), `envelope` the parts
around it (sender, context, referral, errors), `readers` the tolerant field readers, `storable`
the checks that each event fits the columns that keep it.
`bot.dev.simulate` builds bodies the way Meta sends them.
"""

from bot.meta.envelope import (
    ContactProfile,
    Context,
    MessageType,
    MetaError,
    Referral,
    StatusType,
)
from bot.meta.events import (
    InboundMessage,
    MalformedItem,
    OtherChange,
    PreferenceUpdate,
    Status,
    WebhookBody,
)
from bot.meta.parser import PayloadError, parse_body
from bot.meta.parts import (
    MEDIA_TYPES,
    Content,
    Location,
    Media,
    MediaKind,
    Order,
    Reaction,
    ReplyChoice,
    ReplyKind,
    Revoke,
    SharedContacts,
    SystemNotice,
    Text,
    WelcomeRequest,
)
from bot.meta.readers import ItemError, parse_timestamp

__all__ = [
    "MEDIA_TYPES",
    "ContactProfile",
    "Content",
    "Context",
    "InboundMessage",
    "ItemError",
    "Location",
    "MalformedItem",
    "Media",
    "MediaKind",
    "MessageType",
    "MetaError",
    "Order",
    "OtherChange",
    "PayloadError",
    "PreferenceUpdate",
    "Reaction",
    "Referral",
    "ReplyChoice",
    "ReplyKind",
    "Revoke",
    "SharedContacts",
    "Status",
    "StatusType",
    "SystemNotice",
    "Text",
    "WebhookBody",
    "WelcomeRequest",
    "parse_body",
    "parse_timestamp",
]
