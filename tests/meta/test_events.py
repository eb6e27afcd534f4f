"""InboundMessage and its siblings: types, summaries, derived values, and what they refuse."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any

import pytest

from bot.meta import (
    ContactProfile,
    Context,
    Location,
    Media,
    MediaKind,
    MessageType,
    Reaction,
    ReplyChoice,
    ReplyKind,
    Status,
    StatusType,
    SystemNotice,
    Text,
    parse_body,
)
from bot.meta.readers import ItemError
from tests.conftest import fixture_bytes
from tests.meta.bodies import at, one_message, parse_fixture

# --- types ---


def test_unknown_type_is_unsupported_with_original_type_kept() -> None:
    parsed = one_message(type="ephemeral", ephemeral={"x": 1}, text=None)
    assert parsed.type is MessageType.UNSUPPORTED
    assert parsed.original_type == "ephemeral"
    assert parsed.summary == "[unsupported: ephemeral]"
    assert parsed.content is None and parsed.content_text is None


def test_missing_type_is_unsupported_not_lost() -> None:
    parsed = one_message(type=None)
    assert parsed.type is MessageType.UNSUPPORTED
    assert parsed.original_type == ""
    assert parsed.wamid == "wamid.A"


@pytest.mark.parametrize(
    ("fields", "summary", "text"),
    [
        (
            {"type": "location", "location": {"latitude": 25.2, "longitude": 55.3, "name": "Mall"}},
            "[location] 25.2, 55.3 Mall",
            None,
        ),
        ({"type": "sticker", "sticker": {"id": "9", "mime_type": "image/webp"}}, "[sticker]", None),
        ({"type": "audio", "audio": {"id": "7", "voice": True}}, "[audio]", None),
        (
            {"type": "document", "document": {"id": "8", "filename": "menu.pdf"}},
            "[document] menu.pdf",
            None,
        ),
        (
            {"type": "video", "video": {"id": "6", "caption": "\u0643\u0639\u0643\u0629"}},
            "[video] كعكة",
            "كعكة",
        ),
        (
            {"type": "reaction", "reaction": {"message_id": "wamid.OUT9"}},
            "[reaction removed from wamid.OUT9]",
            None,
        ),
        (
            {
                "type": "contacts",
                "contacts": [{"name": {"formatted_name": "Ada L"}}, {"name": {}}],
            },
            "[contacts] Ada L, ?",
            None,
        ),
        (
            {"type": "order", "order": {"catalog_id": "1", "product_items": [{}, {}]}},
            "[order] 2 items",
            None,
        ),
        (
            {
                "type": "system",
                "system": {
                    "body": "User changed number",
                    "type": "user_changed_number",
                    "new_wa_id": "16505550000",
                },
            },
            "[system] User changed number",
            None,
        ),
        (
            {
                "type": "interactive",
                "interactive": {"type": "nfm_reply", "nfm_reply": {"body": "Sent"}},
            },
            "[interactive nfm_reply] Sent",
            "Sent",
        ),
        ({"type": "text", "text": {"body": ""}}, "[text]", ""),
    ],
    ids=lambda value: value["type"] if isinstance(value, dict) else None,
)
def test_summary_for_every_type(fields: dict[str, Any], summary: str, text: str | None) -> None:
    parsed = one_message(**{"text": None, **fields})
    assert parsed.summary == summary
    assert parsed.content_text == text
    assert parsed.type is MessageType(fields["type"])


def test_location_and_system_fields() -> None:
    location = one_message(
        type="location",
        text=None,
        location={"latitude": 25.2, "longitude": 55.3, "name": "Mall", "address": "Dubai"},
    )
    assert location.location == Location(
        latitude=25.2, longitude=55.3, name="Mall", address="Dubai"
    )
    assert location.summary == "[location] 25.2, 55.3 Mall, Dubai"
    system = one_message(
        type="system", text=None, system={"type": "user_changed_number", "new_wa_id": "1555"}
    )
    assert system.system == SystemNotice(kind="user_changed_number", new_wa_id="1555")


def test_forwarded_context_has_no_wamid() -> None:
    parsed = one_message(context={"forwarded": True})
    assert parsed.context == Context(forwarded=True)
    assert parsed.context_wamid is None


def test_derived_values_come_from_the_one_content_part() -> None:
    tapped = one_message(
        type="button", text=None, button={"payload": "P", "text": "T"}, context={"id": "wamid.T"}
    )
    assert tapped.content is tapped.reply
    assert (tapped.reply_id, tapped.content_text, tapped.context_wamid) == ("P", "T", "wamid.T")
    reacted = one_message(
        type="reaction", text=None, reaction={"message_id": "wamid.O", "emoji": "👍"}
    )
    assert reacted.content is reacted.reaction
    assert reacted.reply_id is None and reacted.content_text is None
    assert reacted.context is None and reacted.context_wamid is None


@pytest.mark.parametrize(
    ("errors", "summary"),
    [
        (
            [{"code": 131051, "title": "Message type unknown"}],
            "[unsupported: Message type unknown]",
        ),
        ([{"code": 131051}], "[unsupported: unsupported]"),
        (None, "[unsupported: unsupported]"),
    ],
)
def test_unsupported_summary_gives_the_first_error_title_or_the_type(
    errors: list[dict[str, Any]] | None, summary: str
) -> None:
    parsed = one_message(type="unsupported", text=None, errors=errors)
    assert parsed.content is None
    assert parsed.summary == summary


@pytest.mark.parametrize(("source_type", "from_ad"), [("ad", True), ("post", False)])
def test_from_ad_only_for_an_ad_referral(source_type: str, from_ad: bool) -> None:
    assert one_message(referral={"source_type": source_type}).from_ad is from_ad


def test_numeric_message_timestamp_is_accepted() -> None:
    assert one_message(timestamp=1750000000).timestamp == at(1750000000)


def test_wrongly_typed_parts_read_as_absent() -> None:
    parsed = one_message(text={"body": 42}, context="nope", referral=["ad"], errors="x")
    assert parsed.text == Text(body=None)
    assert parsed.content_text is None
    assert parsed.context is None and parsed.context_wamid is None
    assert parsed.referral is None
    assert parsed.errors == ()


# --- the events themselves ---


def test_events_are_frozen_hashable_and_raw_is_not_part_of_equality() -> None:
    raw = fixture_bytes("referral_from_ad.json")
    first, second = parse_body(raw), parse_body(raw)
    assert first == second
    assert hash(first) == hash(second)
    parsed = first.messages[0]
    with pytest.raises(dataclasses.FrozenInstanceError):
        parsed.text = Text(body="changed")  # type: ignore[misc]
    stripped = dataclasses.replace(parsed, raw={})
    assert stripped == parsed and hash(stripped) == hash(parsed)
    assert "raw=" not in repr(parsed)
    assert "Yes, subscribe me" in repr(parsed)
    assert len({parsed, stripped}) == 1
    status = parse_fixture("status_failed_131047.json").statuses[0]
    assert dataclasses.replace(status, raw={"other": 1}) == status


def test_events_refuse_impossible_values() -> None:
    parsed = parse_fixture("text.json").messages[0]
    with pytest.raises(ValueError, match="timezone-aware"):
        dataclasses.replace(parsed, timestamp=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="wa_id or user_id"):
        dataclasses.replace(parsed, wa_id=None, user_id=None)
    with pytest.raises(ValueError):
        ContactProfile(name="nobody")
    # The content is the part for the type, and only that part.
    with pytest.raises(ValueError, match="image message cannot carry Text"):
        dataclasses.replace(parsed, type=MessageType.IMAGE)
    with pytest.raises(ValueError, match="text message cannot carry Text, Reaction"):
        dataclasses.replace(parsed, reaction=Reaction(message_id="wamid.X", emoji="👍"))
    with pytest.raises(ValueError, match="text message needs its content part"):
        dataclasses.replace(parsed, text=None)
    with pytest.raises(ValueError, match="unsupported message cannot carry Text"):
        dataclasses.replace(parsed, type=MessageType.UNSUPPORTED)
    with pytest.raises(ValueError, match="image message cannot carry Media"):
        dataclasses.replace(
            parsed, type=MessageType.IMAGE, text=None, media=Media(kind=MediaKind.VIDEO)
        )
    with pytest.raises(ValueError, match="interactive message cannot carry ReplyChoice"):
        quick_reply = ReplyChoice(kind=ReplyKind.QUICK_REPLY, id="Stop promotions")
        dataclasses.replace(parsed, type=MessageType.INTERACTIVE, text=None, reply=quick_reply)


# --- statuses of messages sent to a group ---

# Meta's "Status messages webhooks for groups" (business-scoped user ids guide, 2026): the group in
# `recipient_id`, the participant by number (`recipient_participant_id`, omitted when the message
# went to their user id) and by user id (`recipient_participant_user_id`).
GROUP_STATUS = {
    "id": "wamid.GROUPOUT1",
    "status": "read",
    "timestamp": "1764488400",
    "recipient_id": "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjM0MDQ2OTQyMzM4MjA=",
    "recipient_type": "group",
    "recipient_participant_user_id": "US.1410018717833190",
    "recipient_participant_parent_user_id": "US.ENT.1410018717833190",
}


def test_a_group_status_names_the_participant_by_user_id_when_meta_gives_no_number() -> None:
    status = Status.from_payload(GROUP_STATUS, phone_number_id="106540352242922")
    assert status.recipient_id == GROUP_STATUS["recipient_id"]
    assert status.recipient_participant_id is None
    assert status.recipient_participant_user_id == "US.1410018717833190"
    assert status.recipient_participant_parent_user_id == "US.ENT.1410018717833190"
    assert status.participant == "US.1410018717833190"
    assert status.recipient_user_id is None  # the recipient is the group, not the participant


def test_a_group_status_names_the_participant_by_number_when_meta_gives_one() -> None:
    item = GROUP_STATUS | {"recipient_participant_id": "16505551234"}
    status = Status.from_payload(item, phone_number_id="106540352242922")
    assert status.participant == "16505551234"


@pytest.mark.parametrize("value", ["sent", "delivered", "read", "failed", "played"])
def test_a_status_reads_each_stage_meta_names(value: str) -> None:
    status = Status.from_payload(GROUP_STATUS | {"status": value}, phone_number_id="1")
    assert status.status is StatusType(value)


def test_a_status_meta_added_later_is_refused_by_name() -> None:
    with pytest.raises(ItemError, match="unknown 'status': 'deleted'"):
        Status.from_payload(GROUP_STATUS | {"status": "deleted"}, phone_number_id="1")
