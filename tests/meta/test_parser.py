"""parse_body against the ways a body can go wrong, and against large or unusual bodies."""

from __future__ import annotations

import json
from typing import Any

import pytest

from bot.meta import ContactProfile, OtherChange, PayloadError, StatusType, WebhookBody, parse_body
from tests.meta.bodies import OUR_NUMBER, change, envelope, message, only_message

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
