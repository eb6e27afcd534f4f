"""C26 in the parser: an item the database could not keep as it came is a MalformedItem.

Every limit here is the one the table declares (storage.limits); PostgreSQL enforces them and
SQLite does not, so the parser is where both backends are made to agree.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from bot.meta import parse_body
from bot.meta.storable import MAX_DEPTH, Unreadable, _problem, support_copy, unstorable
from storage import limits
from tests.meta.bodies import change, envelope, message


def with_sibling(*items: dict[str, Any], key: str = "messages", field: str = "messages") -> bytes:
    """The items between two good messages, in one change."""
    value: dict[str, Any] = {key: list(items)}
    good = change(messages=[message("wamid.GOOD-1")])
    after = change(messages=[message("wamid.GOOD-2")])
    return envelope(good, change(field, **value), after)


def parsed_alone(raw: bytes):  # type: ignore[no-untyped-def]
    """The body, checked to have kept both good siblings; the one malformed item."""
    body = parse_body(raw)
    assert [m.wamid for m in body.messages] == ["wamid.GOOD-1", "wamid.GOOD-2"]
    (bad,) = body.malformed
    return bad


@pytest.mark.parametrize(
    ("fields", "says"),
    [
        ({"id": "w" * (limits.WAMID + 1)}, f"'id' is 257 characters, over the {limits.WAMID}"),
        ({"from": "1" * (limits.WA_ID + 1)}, "'from' is 33 characters"),
        ({"from_user_id": "U" * (limits.USER_ID + 1)}, f"'from_user_id' is {limits.USER_ID + 1} "),
        ({"type": "t" * (limits.MESSAGE_TYPE + 1)}, "'type' is 33 characters"),
        ({"context": {"id": "c" * (limits.WAMID + 1)}}, "'context.id' is 257 characters"),
        (
            {"type": "system", "system": {"type": "user_changed_number", "wa_id": "9" * 40}},
            "'system.wa_id' is 40 characters",
        ),
        (
            {
                "type": "system",
                "system": {"type": "user_changed_user_id", "previous_parent_user_id": "P" * 200},
            },
            "'system.previous_parent_user_id' is 200 characters",
        ),
        ({"text": {"body": "hi\x00there"}}, "holds a NUL character at text.body"),
        ({"extra": {"k\x00": 1}}, "holds a NUL character in a key at extra"),
        ({"timestamp": "9" * 5000}, "'timestamp' is out of range"),
        ({"timestamp": "1000000000"}, "'timestamp' is out of range"),  # 2001: before WhatsApp
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_message_that_cannot_be_stored_is_malformed_and_its_siblings_are_not(
    fields: dict[str, Any], says: str
) -> None:
    bad = parsed_alone(with_sibling(message("wamid.BAD", **fields)))
    assert bad.path == "entry[0].changes[1].value.messages[0]"
    assert says in bad.problem
    assert len(bad.problem) < 300  # a 5,000-digit value is quoted, not copied


def test_values_at_the_limit_are_stored() -> None:
    fields = {
        "id": "w" * limits.WAMID,
        "from": "1" * limits.WA_ID,
        "type": "t" * limits.MESSAGE_TYPE,
        "context": {"id": "c" * limits.WAMID},
    }
    body = parse_body(envelope(change(messages=[message(**fields)])))
    assert body.malformed == ()
    assert body.messages[0].wamid == "w" * limits.WAMID


def test_a_timestamp_a_day_ahead_of_our_clock_is_not_metas() -> None:
    soon = str(int((datetime.now(UTC) + timedelta(hours=1)).timestamp()))
    later = str(int((datetime.now(UTC) + timedelta(days=2)).timestamp()))
    body = parse_body(envelope(change(messages=[message("wamid.S", timestamp=soon)])))
    assert body.malformed == ()
    bad = parsed_alone(with_sibling(message("wamid.L", timestamp=later)))
    assert "'timestamp' is out of range" in bad.problem


@pytest.mark.parametrize(
    ("literal", "says"),
    [
        (b"1e999", "<number 1e999>"),
        (b"-1e999", "<number -1e999>"),
        (b"NaN", "<number NaN>"),
        (b"Infinity", "<number Infinity>"),
        (b"-Infinity", "<number -Infinity>"),
        (b"9" * 5000, "(5000 characters)"),
    ],
    ids=lambda v: v[:12].decode() if isinstance(v, bytes) else None,
)
def test_a_number_json_cannot_hold_spoils_only_its_item(literal: bytes, says: str) -> None:
    raw = with_sibling(message("wamid.BAD", extra="PLACE")).replace(b'"PLACE"', literal)
    bad = parsed_alone(raw)
    assert says in bad.problem and "at extra" in bad.problem
    copy = json.loads(support_copy(bad.raw))
    assert says in copy["extra"]  # named in the copy kept for support, which stays JSON


_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(),
    st.floats(allow_nan=False),
    st.text(alphabet=st.sampled_from("ab\x00ع")),
    st.builds(Unreadable, st.sampled_from(["NaN", "1e999"])),
)
_VALUES = st.recursive(
    _SCALARS,
    lambda inner: st.one_of(
        st.lists(inner, max_size=3),
        st.dictionaries(st.text(alphabet=st.sampled_from("k\x00"), max_size=2), inner, max_size=3),
    ),
    max_leaves=12,
)


def nested(depth: int, bottom: Any) -> Any:
    for n in range(depth):
        bottom = [bottom] if n % 2 else {"k": bottom}
    return bottom


@given(_VALUES, st.integers(MAX_DEPTH - 2, MAX_DEPTH + 2), st.booleans())
def test_c26_the_quick_check_finds_a_problem_wherever_the_walk_names_one(
    value: Any, depth: int, deep: bool
) -> None:
    """unstorable asks the walk that names the place only when the quick check finds a problem:
    the two must agree on every value, at the depth limit too."""
    if deep:
        value = nested(depth, value)
    assert unstorable(value) == _problem(value)


@pytest.mark.parametrize(("depth", "storable"), [(MAX_DEPTH, True), (MAX_DEPTH + 1, False)])
def test_c26_the_depth_limit_counts_the_levels_below_the_item(depth: int, storable: bool) -> None:
    assert (unstorable(nested(depth, "bottom")) is None) is storable
    assert (_problem(nested(depth, "bottom")) is None) is storable


def test_nesting_deeper_than_any_meta_payload_is_malformed() -> None:
    deep: Any = "bottom"
    for _ in range(MAX_DEPTH + 5):
        deep = [deep]
    bad = parsed_alone(with_sibling(message("wamid.BAD", extra=deep)))
    assert f"nested more than {MAX_DEPTH} levels" in bad.problem
    copy = json.loads(support_copy(bad.raw))
    assert "cut: nested more than" in json.dumps(copy)


def test_a_contact_that_cannot_be_stored_is_kept_apart_and_its_message_still_parsed() -> None:
    contacts = [
        {"profile": {"name": "N" * (limits.PROFILE_NAME + 44)}, "wa_id": "16505551234"},
        {"profile": {"name": "Ada"}, "wa_id": "16505550000"},
        {"wa_id": "16505559999", "parent_user_id": "US.ENT." + "P" * 200},
    ]
    items = [message("wamid.1", **{"from": "16505551234"}), message("wamid.2")]
    items[1]["from"] = "16505550000"
    body = parse_body(envelope(change(contacts=contacts, messages=items)))
    assert [m.wamid for m in body.messages] == ["wamid.1", "wamid.2"]
    assert body.messages[0].contact is None  # answered, without the name it could not keep
    assert body.messages[1].contact is not None and body.messages[1].contact.name == "Ada"
    name, parent = body.malformed
    assert name.path == "entry[0].changes[0].value.contacts[0]"
    assert "'profile.name' is 300 characters, over the 256 stored" in name.problem
    assert f"'parent_user_id' is 207 characters, over the {limits.USER_ID}" in parent.problem


@pytest.mark.parametrize(
    ("status", "says"),
    [
        ({"recipient_id": "1" * (limits.USER_ID + 1)}, f"'recipient_id' is {limits.USER_ID + 1} "),
        ({"recipient_user_id": "U" * 200}, "'recipient_user_id' is 200 characters"),
        (
            {"recipient_participant_user_id": "U" * 200},
            "'recipient_participant_user_id' is 200 characters",
        ),
        ({"errors": [{"code": 2**70}]}, "'errors[].code' 1180591620717411303424 does not fit"),
        ({"errors": [{"code": 1, "title": "t" * 600}]}, "'errors[].title' is 600 characters"),
        ({"conversation": {"id": "x\x00"}}, "NUL character at conversation.id"),
        ({"pricing": {"billable": "PLACE"}}, "<number 1e999> at pricing.billable"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_status_that_cannot_be_stored_is_malformed(status: dict[str, Any], says: str) -> None:
    item = {"id": "wamid.S", "status": "failed", "timestamp": "1750000000", **status}
    bad = parsed_alone(with_sibling(item, key="statuses").replace(b'"PLACE"', b"1e999"))
    assert says in bad.problem


@pytest.mark.parametrize(
    ("preference", "says"),
    [
        ({"wa_id": "1" * 33}, "'wa_id' is 33 characters"),
        ({"category": "c" * 65}, "'category' is 65 characters"),
        ({"value": "stop" * 5}, "'value' is 20 characters"),
        ({"detail": "a\x00b"}, "NUL character at detail"),
    ],
    ids=lambda v: str(v)[:30],
)
def test_a_preference_that_cannot_be_stored_is_malformed(
    preference: dict[str, Any], says: str
) -> None:
    item = {
        "wa_id": "16505551234",
        "category": "marketing_messages",
        "value": "stop",
        "timestamp": 1750000000,
        **preference,
    }
    bad = parsed_alone(with_sibling(item, key="user_preferences", field="user_preferences"))
    assert says in bad.problem


def test_an_unhandled_change_that_cannot_be_stored_is_malformed() -> None:
    raw = envelope(
        change(messages=[message("wamid.GOOD-1")]),
        change("f" * (limits.CHANGE_FIELD + 1)),
        change("account_update", note="a\x00b"),
        change("account_update", note="fine"),
        change(messages=[message("wamid.GOOD-2")], unknown_key={"n": "x\x00"}),
    )
    body = parse_body(raw)
    assert [m.wamid for m in body.messages] == ["wamid.GOOD-1", "wamid.GOOD-2"]
    assert [o.raw["value"]["note"] for o in body.others] == ["fine"]
    assert [m.problem.split(": ", 1)[1] for m in body.malformed] == [
        "'field' is 65 characters, over the 64 stored",
        "holds a NUL character at value.note",
        "holds a NUL character at value.unknown_key.n",
    ]


def test_an_entry_id_too_long_to_store_keeps_its_unhandled_change_for_support() -> None:
    document = json.loads(envelope(change("account_update")))
    document["entry"][0]["id"] = "1" * (limits.ENTRY_ID + 1)
    (bad,) = parse_body(json.dumps(document).encode()).malformed
    assert "'entry.id' is 65 characters" in bad.problem


def test_a_phone_number_id_too_long_to_store_makes_its_change_unreadable() -> None:
    bad_change = change(messages=[message("wamid.BAD")])
    bad_change["value"]["metadata"]["phone_number_id"] = "1" * (limits.PHONE_NUMBER_ID + 1)
    raw = envelope(
        change(messages=[message("wamid.GOOD-1")]),
        bad_change,
        change(messages=[message("wamid.GOOD-2")]),
    )
    bad = parsed_alone(raw)
    assert bad.path == "entry[0].changes[1].value.metadata"
    assert "'phone_number_id' is 65 characters" in bad.problem


def test_the_copy_kept_for_support_is_json_any_column_keeps() -> None:
    raw = {"text": {"body": "a\x00b\ud83dc"}, "n": [1.5, 2], "ar": "نعم"}
    copy = support_copy(raw)
    copy.decode("utf-8")
    assert b"\\u0000" in copy and b"\\ud83d" in copy and "نعم".encode() in copy
    assert json.loads(copy)["text"]["body"] == "a\x00b\ud83dc"  # every character kept
    assert support_copy(raw) == copy  # stable, so a redelivery is kept once


def test_unstorable_says_none_for_what_meta_sends(meta_fixture_items: list[Any]) -> None:
    for item in meta_fixture_items:
        assert unstorable(item) is None


@pytest.fixture
def meta_fixture_items() -> list[Any]:
    from tests.conftest import META_FIXTURES

    return [json.loads(path.read_bytes()) for path in sorted(META_FIXTURES.glob("*.json"))]
