"""The simulated bodies parse back into what they were built from, and match Meta's shapes."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest

from bot.dev import simulate as sim
from bot.meta import Context, MessageType, ReplyChoice, ReplyKind, StatusType, parse_body
from tests.conftest import fixture_bytes

WHEN = datetime(2025, 6, 15, 12, 0, tzinfo=UTC)


def test_text_round_trip() -> None:
    raw = sim.text_body(wa_id="971500000001", text="Hello", wamid="wamid.T1", timestamp=WHEN)
    body = parse_body(raw)
    (message,) = body.messages
    assert message.type is MessageType.TEXT
    assert (message.wamid, message.wa_id, message.content_text) == (
        "wamid.T1",
        "971500000001",
        "Hello",
    )
    assert message.timestamp == WHEN
    assert message.phone_number_id == sim.DEFAULT_PHONE_NUMBER_ID
    assert message.display_phone_number == sim.DEFAULT_DISPLAY_PHONE_NUMBER
    assert message.contact is not None and message.contact.name == "Test User"
    assert message.referral is None
    assert body.malformed == body.others == ()


def test_text_with_ad_referral_and_user_id() -> None:
    raw = sim.text_body(
        wa_id="971500000001",
        text="Yes",
        user_id="AE.42",
        referral={"source_type": "ad", "source_id": "123", "ctwa_clid": "clid"},
        phone_number_id="222",
        display_phone_number="15550000002",
    )
    (message,) = parse_body(raw).messages
    assert message.from_ad
    assert message.referral is not None and message.referral.ctwa_clid == "clid"
    assert message.user_id == "AE.42"
    assert message.contact is not None and message.contact.user_id == "AE.42"
    assert (message.phone_number_id, message.display_phone_number) == ("222", "15550000002")


def test_text_from_a_username_without_wa_id() -> None:
    (message,) = parse_body(sim.text_body(wa_id=None, user_id="US.7", text="hi")).messages
    assert message.wa_id is None
    assert message.contact_key == "US.7"
    assert "from" not in message.raw


def test_arabic_and_emoji_are_escaped_like_meta_and_decoded_back() -> None:
    text = "إلغاء الاشتراك 👍"
    raw = sim.text_body(wa_id="966501234567", text=text)
    assert raw.isascii()
    assert b"\\u0625" in raw and b"\\ud83d\\udc4d" in raw
    assert parse_body(raw).messages[0].content_text == text


def test_button_reply_round_trip() -> None:
    raw = sim.button_reply_body(
        wa_id="1", reply_id="cat:offers:yes", title="Yes", context_wamid="wamid.P"
    )
    (message,) = parse_body(raw).messages
    assert message.type is MessageType.INTERACTIVE
    assert message.reply == ReplyChoice(kind=ReplyKind.BUTTON, id="cat:offers:yes", title="Yes")
    assert (message.reply_id, message.content_text) == ("cat:offers:yes", "Yes")
    assert message.context == Context(wamid="wamid.P", from_=sim.DEFAULT_DISPLAY_PHONE_NUMBER)


def test_list_reply_round_trip() -> None:
    raw = sim.list_reply_body(wa_id="1", reply_id="orders", title="Orders", description="Ship")
    (message,) = parse_body(raw).messages
    assert message.reply == ReplyChoice(
        kind=ReplyKind.LIST, id="orders", title="Orders", description="Ship"
    )
    assert message.context_wamid is None


def test_template_button_round_trip() -> None:
    raw = sim.template_button_body(
        wa_id="1", payload="Stop promotions", text="Stop promotions", context_wamid="wamid.T"
    )
    (message,) = parse_body(raw).messages
    assert message.type is MessageType.BUTTON
    assert message.reply is not None and message.reply.kind is ReplyKind.QUICK_REPLY
    assert message.reply_id == message.content_text == "Stop promotions"
    assert message.context_wamid == "wamid.T"


@pytest.mark.parametrize("media_type", ["image", "audio", "video", "document", "sticker"])
def test_media_round_trip(media_type: str) -> None:
    raw = sim.media_body(wa_id="1", media_type=media_type, caption="look", media_id="55")
    (message,) = parse_body(raw).messages
    assert message.type is MessageType(media_type)
    assert message.media is not None and message.media.kind == media_type
    assert message.media.id == "55"
    assert message.media.mime_type
    if media_type == "sticker":
        assert message.summary == "[sticker]"
        assert message.media.caption is None and message.content_text is None
    else:
        assert message.media.caption == message.content_text == "look"
        assert message.summary == f"[{media_type}] look"


def test_media_defaults_and_unknown_type() -> None:
    (message,) = parse_body(sim.media_body(wa_id="1")).messages
    assert message.type is MessageType.IMAGE
    assert message.media is not None and message.media.id and message.media.caption is None
    assert message.content_text is None
    with pytest.raises(ValueError, match="media_type"):
        sim.media_body(wa_id="1", media_type="hologram")


def test_status_round_trip_with_errors() -> None:
    custom = {"code": 131026, "title": "Message undeliverable"}
    raw = sim.status_body(
        wamid="wamid.OUT",
        status="failed",
        recipient_id="1",
        timestamp=WHEN,
        errors=[131050, custom],
    )
    body = parse_body(raw)
    (status,) = body.statuses
    assert status.status is StatusType.FAILED
    assert status.timestamp == WHEN
    assert status.error_codes == (131050, 131026)
    assert status.errors[0].title and "marketing" in status.errors[0].title
    assert body.messages == body.contacts == ()


def test_status_round_trip_with_pricing() -> None:
    raw = sim.status_body(
        wamid="wamid.OUT",
        status="sent",
        recipient_id=None,
        recipient_user_id="US.9",
        conversation_id="c1",
        pricing_category="service",
        billable=False,
    )
    (status,) = parse_body(raw).statuses
    assert (status.recipient_id, status.recipient_user_id) == (None, "US.9")
    assert (status.conversation_id, status.conversation_origin) == ("c1", "service")
    assert (status.pricing_category, status.billable) == ("service", False)
    assert status.errors == ()


@pytest.mark.parametrize("value", ["stop", "resume"])
def test_preference_round_trip(value: str) -> None:
    raw = sim.preference_body(wa_id="1", value=value, timestamp=1729610285)
    (preference,) = parse_body(raw).preferences
    assert preference.value == value
    assert preference.is_stop is (value == "stop")
    assert preference.timestamp == datetime.fromtimestamp(1729610285, tz=UTC)
    assert preference.contact is not None and preference.contact.wa_id == "1"
    # Meta sends this timestamp as a number, unlike message timestamps.
    item = json.loads(raw)["entry"][0]["changes"][0]["value"]["user_preferences"][0]
    assert item["timestamp"] == 1729610285


def test_preference_by_user_id_only() -> None:
    raw = sim.preference_body(wa_id=None, user_id="US.5", value="stop")
    (preference,) = parse_body(raw).preferences
    assert preference.contact_key == "US.5"


def test_wamids_are_unique_and_timestamps_default_to_now() -> None:
    before = int(time.time())
    first, second = (parse_body(sim.text_body(wa_id="1", text="x")).messages[0] for _ in "ab")
    after = int(time.time())
    assert first.wamid != second.wamid
    assert first.wamid.startswith("wamid.SIM")
    assert before <= first.timestamp.timestamp() <= after
    raw_timestamp = first.raw["timestamp"]
    assert isinstance(raw_timestamp, str) and raw_timestamp.isdigit()


def test_bad_arguments_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        sim.text_body(wa_id="1", text="x", timestamp=datetime(2025, 1, 1))
    with pytest.raises(ValueError, match="wa_id or a user_id"):
        sim.text_body(wa_id=None, text="x")
    with pytest.raises(ValueError, match="wa_id or a user_id"):
        sim.preference_body(wa_id=None, value="stop")


def test_batch_body_keeps_every_entry_in_order() -> None:
    raw = sim.batch_body(
        sim.text_body(wa_id="1", text="a", wamid="wamid.1"),
        sim.status_body(wamid="wamid.O", status="read", recipient_id="1"),
        sim.text_body(wa_id="2", text="b", wamid="wamid.2", phone_number_id="222"),
    )
    body = parse_body(raw)
    assert [m.wamid for m in body.messages] == ["wamid.1", "wamid.2"]
    assert [m.phone_number_id for m in body.messages] == [sim.DEFAULT_PHONE_NUMBER_ID, "222"]
    assert [s.wamid for s in body.statuses] == ["wamid.O"]
    assert raw.isascii()


# --- simulated bodies say what Meta's recorded ones say ---

RE_ENGAGEMENT_DETAILS = (
    "Message failed to send because more than 24 hours have passed since the customer last"
    " replied to this number."
)

SAME_AS_FIXTURE = {
    "interactive_button_reply.json": lambda: sim.button_reply_body(
        wa_id="16505551234",
        reply_id="optin:yes",
        title="Yes, all",
        context_wamid="wamid.PROMPT0001",
        wamid="wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTZBQzg0MzQ4QjRCM0NGNkVGOAA=",
        timestamp="1750025136",
        name="Sheena Nelson",
    ),
    "template_quick_reply_stop_promotions.json": lambda: sim.template_button_body(
        wa_id="16505551234",
        payload="Stop promotions",
        text="Stop promotions",
        context_wamid="wamid.TEMPLATE0001",
        wamid="wamid.BUTTON0001",
        timestamp="1750091045",
        name="Sheena Nelson",
    ),
    "image.json": lambda: sim.media_body(
        wa_id="16505551234",
        caption="Taj Mahal",
        media_id="1003383421387256",
        wamid="wamid.IMAGE0001",
        timestamp="1744344496",
        name="Sheena Nelson",
    ),
    "text_arabic_stop.json": lambda: sim.text_body(
        wa_id="966501234567",
        text="إِلْغَاء الاشتراك",
        wamid="wamid.ARABIC0001",
        timestamp="1749416390",
        name="نورة",
    ),
    "status_failed_131047.json": lambda: sim.status_body(
        wamid="wamid.OUT0002",
        status="failed",
        recipient_id="16505551234",
        timestamp="1751142888",
        errors=[
            {
                "code": 131047,
                "title": "Re-engagement message",
                "message": "Re-engagement message",
                "error_data": {"details": RE_ENGAGEMENT_DETAILS},
            }
        ],
    ),
    "user_preferences_stop.json": lambda: sim.preference_body(
        wa_id="16505551234", value="stop", timestamp=1729610285, name="Sheena Nelson"
    ),
}


@pytest.mark.parametrize("name", sorted(SAME_AS_FIXTURE))
def test_simulated_body_parses_like_the_recorded_one(name: str) -> None:
    simulated = parse_body(SAME_AS_FIXTURE[name]())
    recorded = parse_body(fixture_bytes(name))
    assert simulated.contacts == recorded.contacts
    assert simulated.messages == recorded.messages
    assert simulated.statuses == recorded.statuses
    assert simulated.preferences == recorded.preferences


# --- signatures ---


def test_sign_matches_a_known_vector() -> None:
    # HMAC-SHA256 test vector ("key", "The quick brown fox jumps over the lazy dog").
    assert sim.sign(b"The quick brown fox jumps over the lazy dog", "key") == (
        "sha256=f7bc83f430538424b13298e6aa6fb143ef4d59a14946175997479dbc2d1a3cd8"
    )


def test_signature_is_over_the_exact_bytes() -> None:
    raw = fixture_bytes("text_arabic_stop.json")
    reserialised = json.dumps(json.loads(raw), ensure_ascii=False).encode("utf-8")
    assert sim.sign(raw, "s3cret") != sim.sign(reserialised, "s3cret")
    assert sim.sign(raw, "s3cret") != sim.sign(raw, "other")
    assert sim.sign(raw, "s3cret").startswith("sha256=")
    assert len(sim.sign(raw, "s3cret")) == len("sha256=") + 64
