"""Every recorded body posted as Meta sends it: what each holds is counted once, and again as
duplicates when Meta delivers it a second time."""

from __future__ import annotations

import pytest

from tests.conftest import META_FIXTURES

FIXTURES = sorted(path.name for path in META_FIXTURES.glob("*.json"))

# Understood (messages, statuses, preferences), kept as other, kept for support (malformed).
EXPECTED: dict[str, dict[str, int]] = {
    "batch_two_numbers.json": {"messages": 3},
    "edit_to_stop.json": {"messages": 1},
    "flow_reply.json": {"messages": 1},
    "group_text.json": {"messages": 1},
    "history.json": {"others": 1},
    "image.json": {"messages": 1},
    "interactive_button_reply.json": {"messages": 1},
    "interactive_list_reply.json": {"messages": 1},
    "reaction.json": {"messages": 1},
    "reaction_removed.json": {"messages": 1},
    "referral_from_ad.json": {"messages": 1},
    "request_welcome.json": {"messages": 1},
    "revoke.json": {"messages": 1},
    "smb_message_echoes.json": {"others": 1},
    "status_bsuid_only.json": {"statuses": 1},
    "status_failed_131047.json": {"statuses": 1},
    "statuses_out_of_order.json": {"statuses": 3},
    "system_user_changed_number.json": {"messages": 1},
    "system_user_changed_user_id.json": {"messages": 1},
    "template_quick_reply_stop_promotions.json": {"messages": 1},
    "text.json": {"messages": 1},
    "text_arabic_stop.json": {"messages": 1},
    "unsupported.json": {"messages": 1},
    "user_preferences_stop.json": {"preferences": 1},
    "username_button_reply.json": {"messages": 1},
    "username_without_wa_id.json": {"messages": 1},
}
KEYS = ("messages", "duplicates", "statuses", "preferences", "others", "malformed")


def report(**counts: int) -> dict[str, int]:
    return {key: counts.get(key, 0) for key in KEYS}


def test_every_fixture_has_its_expected_counts() -> None:
    assert set(FIXTURES) == set(EXPECTED)


@pytest.mark.parametrize("name", FIXTURES)
def test_each_fixture_is_counted_once_then_as_duplicates(name: str, meta) -> None:
    first = meta.post_fixture(name)
    assert first.status_code == 200
    assert first.json == report(**EXPECTED[name])
    again = meta.post_fixture(name)
    assert again.status_code == 200
    assert again.json == report(duplicates=sum(EXPECTED[name].values()))
