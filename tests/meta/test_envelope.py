"""The parts around a message's content: types, errors, the sender, context and referral."""

from __future__ import annotations

import pytest

from bot.meta import ContactProfile, Context, ItemError, MessageType, MetaError, Referral
from bot.meta.envelope import match_contact


@pytest.mark.parametrize("value", [t.value for t in MessageType])
def test_message_type_reads_every_known_string(value: str) -> None:
    assert MessageType.read(value) is MessageType(value)


@pytest.mark.parametrize("value", ["", "edit", "poll", "TEXT", "text "])
def test_message_type_reads_anything_else_as_unsupported(value: str) -> None:
    assert MessageType.read(value) is MessageType.UNSUPPORTED


@pytest.mark.parametrize(
    ("code", "expected"),
    [(131047, 131047), ("131047", 131047), ("١٣", None), ("x", None), (True, None), (1.5, None)],
    ids=repr,
)
def test_meta_error_code_is_an_int_or_none(code: object, expected: int | None) -> None:
    assert MetaError.from_payload({"code": code}).code == expected


def test_meta_error_reads_title_message_and_details() -> None:
    error = MetaError.from_payload(
        {"code": 131026, "title": "T", "message": "M", "error_data": {"details": "D"}}
    )
    assert error == MetaError(code=131026, title="T", message="M", details="D")
    assert MetaError.from_payload({"error_data": "x", "title": 5}) == MetaError()


def test_meta_error_list_keeps_only_objects() -> None:
    assert MetaError.from_list([{"code": 1}, "junk", 7, {"code": 2}]) == (
        MetaError(code=1),
        MetaError(code=2),
    )
    assert MetaError.from_list({"code": 1}) == ()
    assert MetaError.from_list(None) == ()


def test_contact_profile_reads_ids_profile_and_country() -> None:
    contact = ContactProfile.from_payload(
        {
            "wa_id": "16505551234",
            "user_id": "US.1",
            "country_code": "US",
            "profile": {"name": "Sheena", "username": "sheena"},
        }
    )
    assert contact == ContactProfile(
        wa_id="16505551234", user_id="US.1", name="Sheena", username="sheena", country_code="US"
    )
    assert contact.key == "16505551234"
    assert ContactProfile.from_payload({"user_id": "US.1", "profile": "x"}).key == "US.1"


@pytest.mark.parametrize("payload", [{}, {"wa_id": ""}, {"wa_id": 5, "user_id": None}])
def test_contact_profile_without_ids_is_an_item_error(payload: dict[str, object]) -> None:
    with pytest.raises(ItemError, match="missing both 'wa_id' and 'user_id'"):
        ContactProfile.from_payload(payload)


def test_contact_profile_merge_fills_only_what_is_missing() -> None:
    first = ContactProfile(wa_id="1", name="Ada")
    later = ContactProfile(wa_id="1", user_id="US.1", name="Ada L", country_code="GB")
    assert first.merged(later) == ContactProfile(
        wa_id="1", user_id="US.1", name="Ada", country_code="GB"
    )


def test_match_contact_prefers_wa_id_then_user_id() -> None:
    by_phone = ContactProfile(wa_id="1", name="phone")
    by_user = ContactProfile(user_id="US.1", name="user")
    contacts = {"1": by_phone, "US.1": by_user}
    assert match_contact(contacts, "1", "US.1") is by_phone
    assert match_contact(contacts, "2", "US.1") is by_user
    assert match_contact(contacts, None, "US.1") is by_user
    assert match_contact(contacts, "2", None) is None
    assert match_contact(None, "1", None) is None


@pytest.mark.parametrize(
    ("payload", "expected"),
    [
        ({"id": "wamid.P", "from": "1555"}, Context(wamid="wamid.P", from_="1555")),
        ({"forwarded": True}, Context(forwarded=True)),
        ({"frequently_forwarded": True}, Context(forwarded=True)),
        ({"forwarded": "yes", "id": 7}, Context()),
    ],
)
def test_context_reads_what_the_message_answers(
    payload: dict[str, object], expected: Context
) -> None:
    assert Context.from_payload(payload) == expected


@pytest.mark.parametrize(("source_type", "is_ad"), [("ad", True), ("post", False), (None, False)])
def test_only_an_ad_referral_is_an_ad(source_type: str | None, is_ad: bool) -> None:
    referral = Referral.from_payload({"source_type": source_type, "headline": "H"})
    assert referral.is_ad is is_ad
    assert referral.headline == "H"
