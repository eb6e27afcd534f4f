"""parse_body against every recorded Meta payload: one check per fixture file."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC
from pathlib import Path

import pytest

from bot.meta import (
    ContactProfile,
    Context,
    MediaKind,
    MessageType,
    Reaction,
    ReplyChoice,
    ReplyKind,
    Revoke,
    StatusType,
    SystemNotice,
    Text,
    WebhookBody,
    WelcomeRequest,
    parse_body,
)
from tests.conftest import META_FIXTURES
from tests.meta.bodies import OUR_NUMBER, at, only_message

FIXTURE_FILES = sorted(META_FIXTURES.glob("*.json"))


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


def check_reaction_removed(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.REACTION
    assert message.reaction == Reaction(message_id="wamid.OUT0001", emoji=None)
    assert message.reaction.removed
    assert message.content_text is None
    assert message.summary == "[reaction removed from wamid.OUT0001]"


def check_flow_reply(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.INTERACTIVE
    assert message.reply == ReplyChoice(
        kind=ReplyKind.OTHER,
        title="Sent",
        other_kind="nfm_reply",
        # The form's answers are kept, not only the "Sent" the customer saw.
        flow_fields=(("flow_token", '"prefs-1"'), ("orders", "true"), ("offers", "false")),
        # The token we sent the Flow with: it leads back to the form it answers, if ours.
        flow_token="prefs-1",
    )
    # A Flow's answer names no button: the dialogue sees its body and no reply id.
    assert message.reply_id is None
    assert message.content_text == "Sent"
    assert message.context_wamid == "wamid.OUT0002"
    assert message.summary == (
        '[interactive nfm_reply] Sent (flow_token="prefs-1", orders=true, offers=false)'
    )


def check_system_user_changed_number(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.SYSTEM
    assert (message.wa_id, message.user_id) == ("16505551234", "US.1410018717833190")
    assert message.contact is None and body.contacts == ()  # identity changes carry no contacts
    assert message.system == SystemNotice(
        kind="user_changed_number",
        body="User Sheena Nelson changed from 16505551234 to 16505559999",
        new_wa_id="16505559999",
        user_id="US.2020018717833190",
        previous_user_id="US.1410018717833190",
    )
    assert message.content_text is None
    assert message.summary == "[system] User Sheena Nelson changed from 16505551234 to 16505559999"


def check_system_user_changed_user_id(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.wa_id is None
    assert message.user_id == message.contact_key == "US.2020018717833190"
    assert message.system == SystemNotice(
        kind="user_changed_user_id",
        body="User Sheena Nelson's business-scoped user ID changed",
        user_id="US.2020018717833190",
        previous_user_id="US.1410018717833190",
    )
    assert message.system.new_wa_id is None
    assert message.summary == "[system] User Sheena Nelson's business-scoped user ID changed"


def check_username_button_reply(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.wa_id is None
    assert message.user_id == message.contact_key == "US.13491208655302741918"
    assert message.reply == ReplyChoice(kind=ReplyKind.BUTTON, id="optin:yes", title="Yes, all")
    assert message.context == Context(wamid="wamid.PROMPT0002", from_="15550783881")
    assert message.contact == ContactProfile(
        user_id="US.13491208655302741918", name="Kai", username="kai.bakes"
    )


def check_status_bsuid_only(body: WebhookBody) -> None:
    assert not body.messages and not body.contacts
    (status,) = body.statuses
    assert (status.wamid, status.status) == ("wamid.OUT0001", StatusType.DELIVERED)
    assert status.recipient_id is None
    assert status.recipient_user_id == "US.1410018717833190"
    assert status.billable is False


def check_smb_message_echoes(body: WebhookBody) -> None:
    """The business's own message from the WhatsApp Business app: kept, never a message of the
    customer's (a STOP the business typed is not the customer's stop)."""
    assert not body.messages and not body.statuses and not body.contacts
    (other,) = body.others
    assert other.field == "smb_message_echoes"
    echo = other.raw["value"]["message_echoes"][0]
    assert (echo["from"], echo["to"], echo["text"]) == (
        "15550783881",
        "16505551234",
        {"body": "STOP"},
    )


def check_history(body: WebhookBody) -> None:
    """The Business app's chat history: kept; the customer's old words in it decide nothing."""
    assert not body.messages and not body.statuses and not body.contacts
    (other,) = body.others
    assert other.field == "history"
    (chunk,) = other.raw["value"]["history"]
    (thread,) = chunk["threads"]
    assert thread["id"] == "16505551234"
    assert [m["text"]["body"] for m in thread["messages"]][::2] == ["yes", "STOP"]


GROUP_ID = "Y2FwaV9ncm91cDoxNTU1MDc4Mzg4MToxMjAzNjM0MDQ2OTQyMzM4MjA="
ORIGINAL = "wamid.HBgLMTY1MDM4Nzk0MzkVAgASGBQzQTRBNjU5OUFFRTAzODEwMTQ0RgA="


def check_group_text(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.group_id == GROUP_ID
    assert message.text == Text(body="yes")
    assert message.wa_id == "16505551234" and message.edit_of is None


def check_edit_to_stop(body: WebhookBody) -> None:
    message = only_message(body)
    # Read as the message it now is, beside the one it replaces.
    assert message.original_type == "edit"
    assert message.type is MessageType.TEXT
    assert message.text == Text(body="STOP")
    assert message.content_text == "STOP"
    assert message.edit_of == ORIGINAL
    assert message.group_id is None


def check_revoke(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.REVOKE
    assert message.revoke == Revoke(original_message_id=ORIGINAL)
    assert message.content_text is None
    assert message.summary == f"[deleted {ORIGINAL}]"


def check_request_welcome(body: WebhookBody) -> None:
    message = only_message(body)
    assert message.type is MessageType.REQUEST_WELCOME
    assert message.welcome == WelcomeRequest()
    assert message.content_text is None
    assert message.summary == "[opened the chat]"


# Fields the bot stores and acknowledges without reading them as anyone's message.
STORED_ONLY = {"smb_message_echoes.json", "history.json"}

CHECKS: dict[str, Callable[[WebhookBody], None]] = {
    "batch_two_numbers.json": check_batch_two_numbers,
    "edit_to_stop.json": check_edit_to_stop,
    "flow_reply.json": check_flow_reply,
    "group_text.json": check_group_text,
    "history.json": check_history,
    "image.json": check_image,
    "interactive_button_reply.json": check_interactive_button_reply,
    "interactive_list_reply.json": check_interactive_list_reply,
    "reaction.json": check_reaction,
    "reaction_removed.json": check_reaction_removed,
    "referral_from_ad.json": check_referral_from_ad,
    "request_welcome.json": check_request_welcome,
    "revoke.json": check_revoke,
    "smb_message_echoes.json": check_smb_message_echoes,
    "status_bsuid_only.json": check_status_bsuid_only,
    "status_failed_131047.json": check_status_failed_131047,
    "statuses_out_of_order.json": check_statuses_out_of_order,
    "system_user_changed_number.json": check_system_user_changed_number,
    "system_user_changed_user_id.json": check_system_user_changed_user_id,
    "template_quick_reply_stop_promotions.json": check_template_quick_reply,
    "text.json": check_text,
    "text_arabic_stop.json": check_text_arabic_stop,
    "unsupported.json": check_unsupported,
    "user_preferences_stop.json": check_user_preferences_stop,
    "username_button_reply.json": check_username_button_reply,
    "username_without_wa_id.json": check_username_without_wa_id,
}


def test_every_fixture_has_a_check() -> None:
    assert FIXTURE_FILES, f"no fixtures in {META_FIXTURES}"
    assert {path.name for path in FIXTURE_FILES} == set(CHECKS)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.name)
def test_fixture(path: Path) -> None:
    body = parse_body(path.read_bytes())
    assert body.object == "whatsapp_business_account"
    assert body.malformed == ()
    if path.name not in STORED_ONLY:  # whose checks name their one stored change exactly
        assert body.others == ()
    CHECKS[path.name](body)


@pytest.mark.parametrize("path", FIXTURE_FILES, ids=lambda path: path.name)
def test_fixture_events_keep_their_raw_item(path: Path) -> None:
    document = json.loads(path.read_bytes())
    value = document["entry"][0]["changes"][0]["value"]
    body = parse_body(path.read_bytes())
    if path.name in STORED_ONLY:  # the whole change is kept, as it came
        assert [other.raw for other in body.others] == [document["entry"][0]["changes"][0]]
        return
    first = (body.messages or body.statuses or body.preferences)[0]
    raw_items = value.get("messages") or value.get("statuses") or value.get("user_preferences")
    assert first.raw == raw_items[0]
