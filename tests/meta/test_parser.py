"""parse_body against every recorded Meta payload, and against the ways a body can go wrong."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from bot.meta import (
    ContactProfile,
    Context,
    InboundMessage,
    Location,
    Media,
    MediaKind,
    MessageType,
    OtherChange,
    PayloadError,
    Reaction,
    ReplyChoice,
    ReplyKind,
    StatusType,
    SystemNotice,
    Text,
    WebhookBody,
    parse_body,
)
from tests.conftest import META_FIXTURES

FIXTURES = META_FIXTURES
FIXTURE_FILES = sorted(FIXTURES.glob("*.json"))
OUR_NUMBER = "106540352242922"


def parse_fixture(name: str) -> WebhookBody:
    return parse_body((FIXTURES / name).read_bytes())


def at(epoch: int) -> datetime:
    return datetime.fromtimestamp(epoch, tz=UTC)


def only_message(body: WebhookBody) -> InboundMessage:
    assert len(body.messages) == 1
    assert not body.statuses and not body.preferences
    return body.messages[0]


# --- one check per fixture file ---


def check_text(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.TEXT
    assert message.original_type == "text"
    assert message.wamid == "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="
    assert message.wa_id == "16505551234"
    assert message.user_id == "US.1410018717833190"
    assert message.contact_key == "16505551234"  # wa_id wins when both are present
    assert message.text == Text(body="Does it come in another color?")
    assert message.content_text == message.summary == "Does it come in another color?"
    assert message.context is None
    assert message.timestamp == at(1749416383)
    assert message.timestamp.tzinfo is UTC
    assert message.phone_number_id == OUR_NUMBER
    assert message.display_phone_number == "15550783881"
    assert message.contact == ContactProfile(
        wa_id="16505551234",
        user_id="US.1410018717833190",
        name="Sheena Nelson",
        country_code="US",
    )
    assert message.referral is None and not message.from_ad
    assert body.contacts == (message.contact,)


def check_text_arabic_stop(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.content_text == "إِلْغَاء الاشتراك"
    assert message.wamid == "wamid.ARABIC0001"
    assert message.contact is not None and message.contact.name == "نورة"


def check_batch_two_numbers(body: WebhookBody) -> None:
    assert [m.wamid for m in body.messages] == [
        "wamid.BATCH0001",
        "wamid.BATCH0002",
        "wamid.BATCH0003",
    ]
    assert [m.phone_number_id for m in body.messages] == [
        OUR_NUMBER,
        OUR_NUMBER,
        "222222222222222",
    ]
    assert body.messages[2].display_phone_number == "15550000002"
    # Each message is matched to its own contact, not to the first of the change.
    assert [m.contact.name for m in body.messages if m.contact] == ["Ada", "Grace", "Omar"]
    assert [m.content_text for m in body.messages] == ["hello", "HELP", "مرحبا"]
    assert [c.key for c in body.contacts] == ["447700900001", "447700900002", "201001234567"]


def check_image(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.IMAGE
    assert message.media is not None
    assert message.media.kind is MediaKind.IMAGE
    assert message.media.id == "1003383421387256"
    assert message.media.mime_type == "image/jpeg"
    assert message.media.caption == message.content_text == "Taj Mahal"
    assert message.summary == "[image] Taj Mahal"


def check_interactive_button_reply(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.INTERACTIVE
    assert message.reply == ReplyChoice(kind=ReplyKind.BUTTON, id="optin:yes", title="Yes, all")
    assert message.reply_id == "optin:yes"
    assert message.content_text == "Yes, all"
    assert message.context == Context(wamid="wamid.PROMPT0001", from_="15550783881")
    assert message.context_wamid == "wamid.PROMPT0001"
    assert message.summary == "[button reply] Yes, all"


def check_interactive_list_reply(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.INTERACTIVE
    assert message.reply == ReplyChoice(
        kind=ReplyKind.LIST,
        id="priority_express",
        title="Priority Mail Express",
        description="Next Day to 2 Days",
    )
    assert message.reply_id == "priority_express"
    assert message.content_text == "Priority Mail Express"
    assert message.context_wamid == "wamid.PROMPT0002"


def check_reaction(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.REACTION
    assert message.reaction == Reaction(message_id="wamid.OUT0001", emoji="👍")
    assert message.content_text is None and message.reply_id is None
    assert message.summary == "[reaction 👍 to wamid.OUT0001]"


def check_referral_from_ad(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.content_text == "Yes, subscribe me"
    assert message.referral is not None
    assert message.referral.is_ad and message.from_ad
    assert message.referral.source_id == "120226305854810726"
    assert message.referral.source_url == "https://fb.me/3cr4Wqqkv"
    assert message.referral.headline == "Chat with us"
    assert message.referral.ctwa_clid == "Aff-n8ZTODiE79d22KtAwQKj9e"


def check_status_failed_131047(body: WebhookBody) -> None:
    assert not body.messages and not body.contacts
    (status,) = body.statuses
    assert status.wamid == "wamid.OUT0002"
    assert status.status is StatusType.FAILED
    assert status.recipient_id == "16505551234"
    assert status.phone_number_id == OUR_NUMBER
    assert status.timestamp == at(1751142888)
    assert status.error_codes == (131047,)
    (error,) = status.errors
    assert error.title == "Re-engagement message"
    assert error.details is not None and "24 hours" in error.details


def check_statuses_out_of_order(body: WebhookBody) -> None:
    assert {s.wamid for s in body.statuses} == {"wamid.OUT0001"}
    # Body order is kept; Meta's timestamps give the true order.
    assert [s.status for s in body.statuses] == [
        StatusType.READ,
        StatusType.SENT,
        StatusType.DELIVERED,
    ]
    by_time = sorted(body.statuses, key=lambda s: s.timestamp)
    assert [s.status for s in by_time] == [StatusType.SENT, StatusType.DELIVERED, StatusType.READ]
    sent = body.statuses[1]
    assert sent.billable is False
    assert sent.pricing_category == "service"
    assert body.statuses[0].billable is None


def check_template_quick_reply(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.BUTTON
    assert message.reply == ReplyChoice(
        kind=ReplyKind.QUICK_REPLY, id="Stop promotions", title="Stop promotions"
    )
    assert message.reply_id == message.content_text == "Stop promotions"
    assert message.context_wamid == "wamid.TEMPLATE0001"
    assert message.summary == "[quick reply] Stop promotions"


def check_unsupported(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.UNSUPPORTED
    assert message.original_type == "unsupported"
    assert message.content is None and message.content_text is None
    assert [e.code for e in message.errors] == [131051]
    assert message.summary == "[unsupported: Message type unknown]"


def check_user_preferences_stop(body: WebhookBody) -> None:
    assert not body.messages and not body.statuses
    (preference,) = body.preferences
    assert preference.wa_id == preference.contact_key == "16505551234"
    assert preference.user_id is None
    assert preference.category == "marketing_messages"
    assert preference.value == "stop" and preference.is_stop
    assert preference.detail == "User requested to stop marketing messages"
    assert preference.timestamp == at(1729610285)  # an int in this payload, not a string
    assert preference.phone_number_id == OUR_NUMBER
    assert preference.contact is not None and preference.contact.name == "Sheena Nelson"


def check_username_without_wa_id(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.wa_id is None
    assert message.user_id == message.contact_key == "US.13491208655302741918"
    assert message.contact is not None
    assert message.contact.username == "kai.bakes"
    assert message.contact.key == "US.13491208655302741918"
    assert message.content_text == "hi"
    assert [c.key for c in body.contacts] == ["US.13491208655302741918"]


CHECKS: dict[str, Callable[[WebhookBody], None]] = {
    "batch_two_numbers.json": check_batch_two_numbers,
    "image.json": check_image,
    "interactive_button_reply.json": check_interactive_button_reply,
    "interactive_list_reply.json": check_interactive_list_reply,
    "reaction.json": check_reaction,
    "referral_from_ad.json": check_referral_from_ad,
    "status_failed_131047.json": check_status_failed_131047,
    "statuses_out_of_order.json": check_statuses_out_of_order,
    "template_quick_reply_stop_promotions.json": check_template_quick_reply,
    "text.json": check_text,
    "text_arabic_stop.json": check_text_arabic_stop,
    "unsupported.json": check_unsupported,
    "user_preferences_stop.json": check_user_preferences_stop,
    "username_without_wa_id.json": check_username_without_wa_id,
}


def test_every_fixture_has_a_check() -> None:
    assert FIXTURE_FILES, f"no fixtures in {FIXTURES}"
    assert {path.name for path in FIXTURE_FILES} == set(CHECKS)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.name)
def test_fixture(path: Path) -> None:
    body = parse_body(path.read_bytes())
    assert body.object == "whatsapp_business_account"
    assert body.malformed == ()
    assert body.others == ()
    CHECKS[path.name](body)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.name)
def test_fixture_events_keep_their_raw_item(path: Path) -> None:
    document = json.loads(path.read_bytes())
    value = document["entry"][0]["changes"][0]["value"]
    body = parse_body(path.read_bytes())
    first = (body.messages or body.statuses or body.preferences)[0]
    raw_items = value.get("messages") or value.get("statuses") or value.get("user_preferences")
    assert first.raw == raw_items[0]


# --- building odd bodies ---


def envelope(*changes: dict[str, Any]) -> bytes:
    return json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": list(changes)}]}
    ).encode()


def change(field: str = "messages", **value: Any) -> dict[str, Any]:
    metadata = {"display_phone_number": "15550783881", "phone_number_id": OUR_NUMBER}
    return {
        "field": field,
        "value": {"messaging_product": "whatsapp", "metadata": metadata, **value},
    }


def message(wamid: str = "wamid.A", **fields: Any) -> dict[str, Any]:
    item: dict[str, Any] = {
        "from": "16505551234",
        "id": wamid,
        "timestamp": "1750000000",
        "type": "text",
        "text": {"body": "hi"},
    }
    item.update(fields)
    return {key: value for key, value in item.items() if value is not None}


def one_message(**fields: Any) -> InboundMessage:
    body = parse_body(envelope(change(messages=[message(**fields)])))
    assert body.malformed == ()
    return only_message(body)


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


def test_numeric_message_timestamp_is_accepted() -> None:
    assert one_message(timestamp=1750000000).timestamp == at(1750000000)


def test_wrongly_typed_parts_read_as_absent() -> None:
    parsed = one_message(text={"body": 42}, context="nope", referral=["ad"], errors="x")
    assert parsed.text == Text(body=None)
    assert parsed.content_text is None
    assert parsed.context is None and parsed.context_wamid is None
    assert parsed.referral is None
    assert parsed.errors == ()


# --- one bad item never loses the others ---


@pytest.mark.parametrize(
    ("broken", "problem"),
    [
        ({"id": None}, "missing 'id'"),
        ({"id": 17}, "'id' is not a non-empty string"),
        ({"timestamp": None}, "missing 'timestamp'"),
        ({"timestamp": "yesterday"}, "'timestamp' is not epoch seconds"),
        ({"timestamp": "١٧٥٠٠٠٠٠٠٠"}, "'timestamp' is not epoch seconds"),
        ({"timestamp": True}, "'timestamp' is not epoch seconds"),
        ({"timestamp": "9" * 30}, "'timestamp' is out of range"),
        ({"from": None}, "missing both 'from' and 'from_user_id'"),
    ],
)
def test_broken_message_among_good_ones(broken: dict[str, Any], problem: str) -> None:
    items = [message("wamid.1"), message("wamid.2", **broken), message("wamid.3")]
    body = parse_body(envelope(change(messages=items)))
    assert [m.wamid for m in body.messages] == ["wamid.1", "wamid.3"]
    (bad,) = body.malformed
    assert bad.path == "entry[0].changes[0].value.messages[1]"
    assert bad.problem.startswith("entry[0].changes[0].value.messages[1]: ")
    assert problem in bad.problem
    assert bad.entry_id == "1" and bad.field == "messages"
    assert bad.raw == message("wamid.2", **broken)


def test_broken_status_and_preference_among_good_ones() -> None:
    good = {"id": "wamid.S1", "status": "sent", "timestamp": "1750000000"}
    statuses = [{"status": "read", "timestamp": "1750000001"}, good, "junk"]
    preference = {"wa_id": "1", "category": "marketing_messages", "timestamp": 1}  # no value
    body = parse_body(
        envelope(
            change(statuses=statuses),
            change("user_preferences", user_preferences=[preference]),
        )
    )
    assert [s.wamid for s in body.statuses] == ["wamid.S1"]
    assert [m.problem for m in body.malformed] == [
        "entry[0].changes[0].value.statuses[0]: missing 'id'",
        "entry[0].changes[0].value.statuses[2]: is not an object",
        "entry[0].changes[1].value.user_preferences[0]: missing 'value'",
    ]


def test_broken_entries_and_changes_keep_the_rest() -> None:
    good = change(messages=[message("wamid.OK")])
    document = {
        "object": "whatsapp_business_account",
        "entry": [
            "junk",
            {"id": "2"},
            {"id": "3", "changes": [7, {"value": {}}, {"field": "messages", "value": []}, good]},
            {"id": "4", "changes": [change(messages=[message("wamid.X")], metadata={})]},
        ],
    }
    body = parse_body(json.dumps(document).encode())
    assert [m.wamid for m in body.messages] == ["wamid.OK"]
    assert [m.problem for m in body.malformed] == [
        "entry[0]: is not an object",
        "entry[1]: missing 'changes'",
        "entry[2].changes[0]: is not an object",
        "entry[2].changes[1]: missing 'field'",
        "entry[2].changes[2].value: is not an object",
        "entry[3].changes[0].value.metadata: missing 'phone_number_id'",
    ]
    assert body.malformed[5].entry_id == "4"


def test_contact_without_ids_is_malformed_but_its_message_is_kept() -> None:
    body = parse_body(envelope(change(contacts=[{"profile": {"name": "?"}}], messages=[message()])))
    assert only_message(body).contact is None
    (bad,) = body.malformed
    assert bad.path == "entry[0].changes[0].value.contacts[0]"


# --- what is stored and acknowledged but not handled ---


def test_unknown_field_is_another_change() -> None:
    other = {"field": "account_update", "value": {"event": "VERIFIED_ACCOUNT"}}
    body = parse_body(envelope(other, change(messages=[message()])))
    assert len(body.messages) == 1
    assert body.others == (
        OtherChange(
            entry_id="1",
            field="account_update",
            path="entry[0].changes[0]",
            note="field 'account_update' is not handled",
        ),
    )
    assert body.others[0].raw == other


def test_value_level_errors_are_another_change_with_errors_read() -> None:
    errors = [{"code": 131000, "title": "Something went wrong", "error_data": {"details": "x"}}]
    body = parse_body(envelope(change(errors=errors)))
    (other,) = body.others
    assert other.field == "messages"
    assert other.path == "entry[0].changes[0].value.errors"
    assert other.raw == {
        "field": "messages",
        "value": {
            "messaging_product": "whatsapp",
            "metadata": {"display_phone_number": "15550783881", "phone_number_id": OUR_NUMBER},
            "errors": errors,
        },
    }
    assert [(e.code, e.title, e.details) for e in other.errors] == [
        (131000, "Something went wrong", "x")
    ]
    assert body.malformed == ()


def test_unknown_status_is_another_change_never_a_status() -> None:
    statuses = [
        {"id": "wamid.S", "status": "deleted", "timestamp": "1750000000"},
        {"id": "wamid.S", "status": "read", "timestamp": "1750000001"},
    ]
    body = parse_body(envelope(change(statuses=statuses)))
    assert [s.status for s in body.statuses] == [StatusType.READ]
    (other,) = body.others
    assert other.note == "unknown status 'deleted'"
    assert other.path == "entry[0].changes[0].value.statuses[0]"
    assert other.raw["value"]["statuses"] == [statuses[0]]
    assert other.raw["value"]["metadata"]["phone_number_id"] == OUR_NUMBER
    # Fed back alone, the same change gives the same answer.
    assert parse_body(envelope(other.raw)).others == (other,)


# --- the envelope ---


@pytest.mark.parametrize(
    ("raw", "says"),
    [
        (b"", "not JSON"),
        (b"hello", "not JSON"),
        (b'{"object": "whatsapp_business_account", "entry": [', "not JSON"),
        (b"\xff\xfe{}", "not UTF-8"),
        (b'{"object":"whatsapp_business_account","entry":[NaN]}', "not JSON"),
        (b"[]", "expected an object"),
        (b'"whatsapp_business_account"', "expected an object"),
        (b'{"object": "page", "entry": []}', "'object' is 'page'"),
        (b'{"entry": []}', "'object' is None"),
        (b'{"object": "whatsapp_business_account"}', "'entry'"),
        (b'{"object": "whatsapp_business_account", "entry": {}}', "'entry'"),
        (b"[" * 100_000 + b"]" * 100_000, "not JSON"),
    ],
    ids=lambda value: value[:24].decode("latin-1") if isinstance(value, bytes) else None,
)
def test_payload_errors(raw: bytes, says: str) -> None:
    with pytest.raises(PayloadError, match=says):
        parse_body(raw)


def test_payload_error_is_a_value_error() -> None:
    assert issubclass(PayloadError, ValueError)


def test_empty_entry_list_is_an_empty_body() -> None:
    body = parse_body(b'{"object": "whatsapp_business_account", "entry": []}')
    assert body == WebhookBody(object="whatsapp_business_account")


# --- text ---


def test_escaped_arabic_and_emoji_are_decoded() -> None:
    raw = envelope(
        change(messages=[message(text={"body": "\u0646\u0639\u0645 \U0001f44d\u2764\ufe0f"})])
    )
    assert b"\\ud83d\\udc4d" in raw  # escaped as Meta sends it, a surrogate pair
    assert only_message(parse_body(raw)).content_text == "نعم 👍❤️"


def test_raw_utf8_is_accepted_too() -> None:
    raw = json.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1", "changes": [change()]}]}
    )
    raw = raw.replace('"metadata"', '"note": "مرحبا", "metadata"').encode("utf-8")
    body = parse_body(raw)
    assert body.others[0].raw["value"]["note"] == "مرحبا"


def test_lone_surrogate_is_replaced_so_text_stays_encodable() -> None:
    raw = envelope(change(messages=[message()])).replace(b'"hi"', b'"a\\ud83db"')
    text = only_message(parse_body(raw)).content_text
    assert text == "a\ufffdb"
    text.encode("utf-8")


# --- batches ---


def test_large_batch_across_entries_changes_and_numbers() -> None:
    def numbered(n: int, number: str) -> dict[str, Any]:
        value = change(
            contacts=[{"profile": {"name": f"C{n}"}, "wa_id": f"9715{n:08d}"}],
            messages=[message(f"wamid.M{n}", **{"from": f"9715{n:08d}"})],
            statuses=[{"id": f"wamid.O{n}", "status": "delivered", "timestamp": "1750000000"}],
        )
        value["value"]["metadata"]["phone_number_id"] = number
        return value

    document = {
        "object": "whatsapp_business_account",
        "entry": [
            {"id": str(e), "changes": [numbered(e * 100 + c, f"10{e}") for c in range(100)]}
            for e in range(5)
        ],
    }
    body = parse_body(json.dumps(document).encode())
    assert len(body.messages) == len(body.statuses) == len(body.contacts) == 500
    assert [m.wamid for m in body.messages] == [f"wamid.M{n}" for n in range(500)]
    assert {m.phone_number_id for m in body.messages} == {f"10{e}" for e in range(5)}
    assert all(m.contact and m.contact.name == f"C{n}" for n, m in enumerate(body.messages))
    assert body.malformed == ()


def test_contacts_are_deduplicated_by_key_and_merged() -> None:
    first = {"profile": {"name": "Ada"}, "wa_id": "1"}
    again = {"profile": {"name": "Ada L"}, "wa_id": "1", "user_id": "US.1"}
    body = parse_body(
        envelope(
            change(contacts=[first], messages=[message("wamid.1", **{"from": "1"})]),
            change(contacts=[again], messages=[message("wamid.2", **{"from": "1"})]),
        )
    )
    assert body.contacts == (ContactProfile(wa_id="1", user_id="US.1", name="Ada"),)
    # Each message keeps the contact exactly as its own change carried it.
    assert [m.contact.name for m in body.messages if m.contact] == ["Ada", "Ada L"]


# --- the events themselves ---


def test_events_are_frozen_hashable_and_raw_is_not_part_of_equality() -> None:
    raw = (FIXTURES / "referral_from_ad.json").read_bytes()
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
