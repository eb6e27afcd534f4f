"""The tolerant readers: a wrong type reads as absent; the required ones say what is wrong."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest

from bot.meta.readers import (
    ItemError,
    get_bool,
    get_dict,
    get_float,
    get_list,
    get_str,
    parse_timestamp,
    require_aware,
    require_str,
)

ODD_VALUES = [None, "", "x", 0, 1.5, True, [], [1], {}, {"a": 1}]


@pytest.mark.parametrize("value", ODD_VALUES, ids=repr)
def test_each_reader_returns_only_its_own_type(value: object) -> None:
    payload = {"key": value}
    assert get_dict(payload, "key") == (value if isinstance(value, dict) else {})
    assert get_list(payload, "key") == (value if isinstance(value, list) else [])
    assert get_str(payload, "key") == (value if isinstance(value, str) else None)
    assert get_bool(payload, "key") is (value if isinstance(value, bool) else None)


def test_missing_keys_read_as_absent() -> None:
    assert (get_dict({}, "k"), get_list({}, "k"), get_str({}, "k")) == ({}, [], None)
    assert get_float({}, "k") is None and get_bool({}, "k") is None


@pytest.mark.parametrize(
    ("value", "expected"),
    [(25, 25.0), (25.5, 25.5), (-0.1, -0.1), (True, None), ("25.2", None), (None, None)],
)
def test_get_float_reads_numbers_but_not_bools_or_strings(
    value: object, expected: float | None
) -> None:
    got = get_float({"lat": value}, "lat")
    assert got == expected
    assert got is None or isinstance(got, float)


def test_require_str_names_the_key_and_the_value() -> None:
    assert require_str({"id": "wamid.A"}, "id") == "wamid.A"
    with pytest.raises(ItemError, match="missing 'id'"):
        require_str({}, "id")
    with pytest.raises(ItemError, match=r"'id' is not a non-empty string: ''"):
        require_str({"id": ""}, "id")
    with pytest.raises(ItemError, match=r"'id' is not a non-empty string: 17"):
        require_str({"id": 17}, "id")


def test_item_error_is_a_value_error() -> None:
    assert issubclass(ItemError, ValueError)


@pytest.mark.parametrize("value", ["1750000000", 1750000000])
def test_parse_timestamp_reads_epoch_seconds_as_aware_utc(value: object) -> None:
    parsed = parse_timestamp(value)
    assert parsed == datetime(2025, 6, 15, 15, 6, 40, tzinfo=UTC)
    assert parsed.tzinfo is UTC


@pytest.mark.parametrize(
    ("value", "says"),
    [
        (None, "missing 'when'"),
        (True, "'when' is not epoch seconds"),
        ("1750000000.5", "'when' is not epoch seconds"),
        (1750000000.0, "'when' is not epoch seconds"),
        ("-5", "'when' is not epoch seconds"),
        ("١٧٥٠٠٠٠٠٠٠", "'when' is not epoch seconds"),
        ("9" * 30, "'when' is out of range"),
        (10**30, "'when' is out of range"),
    ],
    ids=repr,
)
def test_parse_timestamp_refuses_what_is_not_epoch_seconds(value: object, says: str) -> None:
    with pytest.raises(ItemError, match=says):
        parse_timestamp(value, "when")


def test_require_aware_refuses_naive_times_only() -> None:
    require_aware(datetime(2025, 1, 1, tzinfo=UTC), "at")
    require_aware(datetime(2025, 1, 1, tzinfo=timezone(timedelta(hours=4))), "at")
    with pytest.raises(ValueError, match="at must be timezone-aware"):
        require_aware(datetime(2025, 1, 1), "at")
