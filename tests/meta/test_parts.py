"""Each content part read from its own JSON object, and the summary it gives the log."""

from __future__ import annotations

from typing import Any

import pytest

from bot.meta import (
    MEDIA_TYPES,
    Location,
    Media,
    MediaKind,
    MessageType,
    Order,
    Reaction,
    ReplyChoice,
    ReplyKind,
    SharedContacts,
    SystemNotice,
    Text,
)
from bot.meta.parts import read_content


def test_text_body_and_summary() -> None:
    assert Text.from_payload({"body": "hi"}) == Text(body="hi")
    assert Text(body="hi").summary == "hi"
    assert Text.from_payload({"body": 42}) == Text(body=None)
    assert Text(body=None).summary == Text(body="").summary == "[text]"


def test_button_and_list_replies() -> None:
    button = ReplyChoice.from_interactive(
        {"type": "button_reply", "button_reply": {"id": "yes", "title": "Yes"}}
    )
    assert button == ReplyChoice(kind=ReplyKind.BUTTON, id="yes", title="Yes")
    assert button.summary == "[button reply] Yes"
    row = ReplyChoice.from_interactive(
        {
            "type": "list_reply",
            "list_reply": {"id": "orders", "title": "Orders", "description": "Ship"},
        }
    )
    assert row == ReplyChoice(kind=ReplyKind.LIST, id="orders", title="Orders", description="Ship")
    assert row.summary == "[list reply] Orders"
    assert button.message_type is row.message_type is MessageType.INTERACTIVE


def test_template_quick_reply_carries_payload_as_id_and_text_as_title() -> None:
    choice = ReplyChoice.from_button({"payload": "STOP_PROMO", "text": "Stop promotions"})
    assert choice == ReplyChoice(
        kind=ReplyKind.QUICK_REPLY, id="STOP_PROMO", title="Stop promotions"
    )
    assert choice.message_type is MessageType.BUTTON
    assert choice.summary == "[quick reply] Stop promotions"


@pytest.mark.parametrize(
    ("interactive", "expected", "summary"),
    [
        (
            {"type": "nfm_reply", "nfm_reply": {"body": "Sent", "response_json": "{}"}},
            ReplyChoice(kind=ReplyKind.OTHER, title="Sent", other_kind="nfm_reply"),
            "[interactive nfm_reply] Sent",
        ),
        (
            # Only a template's button is a quick reply, whatever an interactive type says.
            {"type": "quick_reply", "quick_reply": {"id": "q", "title": "Q"}},
            ReplyChoice(kind=ReplyKind.OTHER, id="q", title="Q", other_kind="quick_reply"),
            "[interactive quick_reply] Q",
        ),
        ({}, ReplyChoice(kind=ReplyKind.OTHER, other_kind=""), "[interactive]"),
        (
            {"type": "button_reply", "button_reply": "junk"},
            ReplyChoice(kind=ReplyKind.BUTTON),
            "[button reply]",
        ),
    ],
)
def test_other_and_unreadable_interactive_answers(
    interactive: dict[str, Any], expected: ReplyChoice, summary: str
) -> None:
    choice = ReplyChoice.from_interactive(interactive)
    assert choice == expected
    assert choice.summary == summary
    assert choice.message_type is MessageType.INTERACTIVE


@pytest.mark.parametrize(
    ("payload", "expected", "summary"),
    [
        (
            {"message_id": "wamid.O", "emoji": "👍"},
            Reaction(message_id="wamid.O", emoji="👍"),
            "[reaction 👍 to wamid.O]",
        ),
        (
            {"message_id": "wamid.O", "emoji": ""},
            Reaction(message_id="wamid.O"),
            "[reaction removed from wamid.O]",
        ),
        (
            {"message_id": "wamid.O"},
            Reaction(message_id="wamid.O"),
            "[reaction removed from wamid.O]",
        ),
    ],
)
def test_reaction_put_on_or_taken_off(
    payload: dict[str, Any], expected: Reaction, summary: str
) -> None:
    reaction = Reaction.from_payload(payload)
    assert reaction == expected
    assert reaction.removed is (expected.emoji is None)
    assert reaction.summary == summary


@pytest.mark.parametrize("kind", list(MediaKind))
def test_media_of_every_kind_keeps_its_kind_and_type(kind: MediaKind) -> None:
    media = Media.from_payload({"id": "9", "mime_type": "x/y"}, kind=kind)
    assert (media.kind, media.id, media.mime_type) == (kind, "9", "x/y")
    assert media.message_type is MessageType(kind)
    assert media.summary == f"[{kind}]"
    assert MessageType(kind) in MEDIA_TYPES and len(MEDIA_TYPES) == len(MediaKind)


def test_media_caption_wins_over_filename_in_the_summary() -> None:
    document = Media.from_payload(
        {"id": "8", "filename": "menu.pdf", "caption": "Our menu"}, kind=MediaKind.DOCUMENT
    )
    assert (document.filename, document.caption) == ("menu.pdf", "Our menu")
    assert document.summary == "[document] Our menu"
    unnamed = Media.from_payload({"id": "8", "filename": "menu.pdf"}, kind=MediaKind.DOCUMENT)
    assert unnamed.summary == "[document] menu.pdf"


def test_a_sticker_never_carries_words() -> None:
    sticker = Media.from_payload(
        {"id": "9", "caption": "yes", "filename": "yes.webp"}, kind=MediaKind.STICKER
    )
    assert sticker == Media(kind=MediaKind.STICKER, id="9")
    assert sticker.summary == "[sticker]"


@pytest.mark.parametrize(
    ("payload", "summary"),
    [
        ({"latitude": 25.2, "longitude": 55.3}, "[location] 25.2, 55.3"),
        ({"latitude": 25, "longitude": 55, "address": "Dubai"}, "[location] 25.0, 55.0 Dubai"),
        ({"latitude": "25.2", "longitude": 55.3, "name": "Mall"}, "[location] Mall"),
        ({}, "[location]"),
    ],
)
def test_location_summary_says_what_is_known(payload: dict[str, Any], summary: str) -> None:
    assert Location.from_payload(payload).summary == summary


def test_shared_contacts_keep_each_card_and_name_the_unnamed() -> None:
    cards = [{"name": {"formatted_name": "Ada L"}}, {"name": "x"}, "junk", {}]
    shared = SharedContacts.from_list(cards)
    assert shared == SharedContacts(names=("Ada L", None, None))
    assert shared.summary == "[contacts] Ada L, ?, ?"
    assert SharedContacts.from_list([]).summary == "[contacts]"


@pytest.mark.parametrize(
    ("payload", "expected", "summary"),
    [
        (
            {"catalog_id": "c", "product_items": [{}], "text": "asap"},
            Order(catalog_id="c", item_count=1, text="asap"),
            "[order] 1 item asap",
        ),
        ({"product_items": "x"}, Order(), "[order] 0 items"),
    ],
)
def test_order_counts_items(payload: dict[str, Any], expected: Order, summary: str) -> None:
    order = Order.from_payload(payload)
    assert order == expected
    assert order.summary == summary


def test_system_notice_of_a_changed_number_and_user_id() -> None:
    number = SystemNotice.from_payload(
        {
            "body": "User A changed from 1 to 2",
            "type": "user_changed_number",
            "wa_id": "2",
            "user_id": "US.2",
            "previous_user_id": "US.1",
        }
    )
    assert number == SystemNotice(
        kind="user_changed_number",
        body="User A changed from 1 to 2",
        new_wa_id="2",
        user_id="US.2",
        previous_user_id="US.1",
    )
    assert number.summary == "[system] User A changed from 1 to 2"
    # Older payloads name the new number `new_wa_id`, and it wins where both are present.
    older = SystemNotice.from_payload({"new_wa_id": "3", "wa_id": "2"})
    assert older.new_wa_id == "3"
    assert older.summary == "[system]"


@pytest.mark.parametrize("mtype", [t for t in MessageType if t is not MessageType.UNSUPPORTED])
def test_read_content_gives_every_known_type_its_part(mtype: MessageType) -> None:
    part = read_content(mtype, {})
    assert part is not None
    assert part.message_type is mtype


def test_read_content_gives_an_unsupported_message_no_part() -> None:
    assert read_content(MessageType.UNSUPPORTED, {"unsupported": {}}) is None


def test_read_content_reads_shared_cards_beside_the_type() -> None:
    payload = {"type": "contacts", "contacts": [{"name": {"formatted_name": "Ada"}}]}
    assert read_content(MessageType.CONTACTS, payload) == SharedContacts(names=("Ada",))
