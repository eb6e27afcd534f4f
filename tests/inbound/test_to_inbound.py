"""What the dialogue receives for each kind of parsed message (responder.to_inbound)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest
from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.inbound.responder import to_inbound
from bot.meta import InboundMessage, parse_body
from flows.model import Inbound, InboundKind
from storage.contacts import lock_contact
from storage.models import Message
from tests.conftest import fixture_bytes
from tests.meta.bodies import change, envelope, message


def parsed(raw: bytes) -> InboundMessage:
    (message,) = parse_body(raw).messages
    return message


@pytest.mark.parametrize(
    ("name", "kind", "text", "reply_id"),
    [
        ("text.json", InboundKind.TEXT, "Does it come in another color?", None),
        ("interactive_button_reply.json", InboundKind.BUTTON, "Yes, all", "optin:yes"),
        (
            "interactive_list_reply.json",
            InboundKind.BUTTON,
            "Priority Mail Express",
            "priority_express",
        ),
        (
            "template_quick_reply_stop_promotions.json",
            InboundKind.BUTTON,
            "Stop promotions",
            "Stop promotions",
        ),
        ("reaction.json", InboundKind.REACTION, None, None),
        ("image.json", InboundKind.MEDIA, "Taj Mahal", None),
        ("unsupported.json", InboundKind.UNSUPPORTED, None, None),
        ("referral_from_ad.json", InboundKind.TEXT, "Yes, subscribe me", None),
    ],
)
def test_each_recorded_message(
    engine: Engine, name: str, kind: InboundKind, text: str | None, reply_id: str | None
) -> None:
    event = parsed(fixture_bytes(name))
    with Session(engine) as session:
        inbound = to_inbound(session, event)
    assert inbound == Inbound(
        kind=kind,
        wamid=event.wamid,
        timestamp=event.timestamp,
        text=text,
        reply_id=reply_id,
        from_ad=name == "referral_from_ad.json",
        context_wamid=event.context_wamid,
    )


@pytest.mark.parametrize(
    ("fields", "kind"),
    [
        ({"type": "sticker", "sticker": {"id": "9"}}, InboundKind.MEDIA),
        ({"type": "document", "document": {"id": "8", "filename": "a.pdf"}}, InboundKind.MEDIA),
        (
            {"type": "location", "location": {"latitude": 1, "longitude": 2}},
            InboundKind.UNSUPPORTED,
        ),
        (
            {"type": "contacts", "contacts": [{"name": {"formatted_name": "A"}}]},
            InboundKind.UNSUPPORTED,
        ),
        ({"type": "order", "order": {"product_items": []}}, InboundKind.UNSUPPORTED),
        # Not the customer's words (C33).
        ({"type": "system", "system": {"body": "changed"}}, InboundKind.NOTICE),
        ({"type": "revoke", "revoke": {"original_message_id": "w"}}, InboundKind.NOTICE),
        # An edit is read as the message it now is: here a text with no body.
        ({"type": "edit", "edit": {"message": {"type": "text"}}}, InboundKind.TEXT),
    ],
    ids=lambda value: value["type"] if isinstance(value, dict) else None,
)
def test_parts_the_dialogue_cannot_read_carry_no_text(
    engine: Engine, fields: dict[str, object], kind: InboundKind
) -> None:
    raw = envelope(change(messages=[message(**{"text": None, **fields})]))
    with Session(engine) as session:
        inbound = to_inbound(session, parsed(raw))
    assert (inbound.kind, inbound.text, inbound.reply_id) == (kind, None, None)
    assert inbound.edited is (fields["type"] == "edit")
    assert not inbound.in_group


def test_a_reply_to_our_message_carries_that_message_text_version(engine: Engine) -> None:
    event = parsed(fixture_bytes("interactive_button_reply.json"))
    with Session(engine) as session:
        contact = lock_contact(session, wa_id="16505551234", user_id=None)
        session.add(
            Message(
                contact_id=contact.id,
                direction="out",
                wamid=event.context_wamid,
                type="interactive",
                meta_timestamp=datetime(2025, 6, 1, tzinfo=UTC),
                text_version="v-prompt",
            )
        )
        session.flush()
        inbound = to_inbound(session, event, contact.id)
    assert inbound.context_wamid == "wamid.PROMPT0001"
    assert inbound.context_text_version == "v-prompt"
    assert inbound.context_sent_at is not None
    assert inbound.verified_context == "wamid.PROMPT0001"


def test_c24_a_reply_to_a_message_sent_to_someone_else_carries_nothing(engine: Engine) -> None:
    event = parsed(fixture_bytes("interactive_button_reply.json"))
    with Session(engine) as session:
        other = lock_contact(session, wa_id="447700900999", user_id=None)
        contact = lock_contact(session, wa_id="16505551234", user_id=None)
        session.add(
            Message(
                contact_id=other.id,
                direction="out",
                wamid=event.context_wamid,
                type="interactive",
                meta_timestamp=datetime(2025, 6, 1, tzinfo=UTC),
                text_version="v-prompt",
            )
        )
        session.flush()
        inbound = to_inbound(session, event, contact.id)
    assert inbound.context_wamid == "wamid.PROMPT0001"  # as Meta reported it
    assert (inbound.context_text_version, inbound.context_sent_at) == (None, None)
    assert inbound.verified_context is None
    assert "prompt_wamid" not in inbound.evidence


def test_c24_a_reply_quoting_the_contacts_own_message_carries_nothing(engine: Engine) -> None:
    event = parsed(fixture_bytes("interactive_button_reply.json"))
    with Session(engine) as session:
        contact = lock_contact(session, wa_id="16505551234", user_id=None)
        session.add(
            Message(
                contact_id=contact.id,
                direction="in",
                wamid=event.context_wamid,
                type="text",
                meta_timestamp=datetime(2025, 6, 1, tzinfo=UTC),
            )
        )
        session.flush()
        inbound = to_inbound(session, event, contact.id)
    assert inbound.verified_context is None
