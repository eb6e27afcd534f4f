import pytest

from bot.wiring.logmask import NONE_MARK, mask_number, mask_recipient, mask_user_id


@pytest.mark.parametrize(
    ("number", "masked"),
    [
        ("15551231234", "•••••••1234"),
        ("+49 151 2345-6789", "•••••••••6789"),
        ("971501234567", "••••••••4567"),
        ("12345", "•2345"),
        ("1234", "••••"),  # the tail would be the whole number
        ("12", "••"),
    ],
)
def test_mask_number_keeps_only_the_last_four_digits(number: str, masked: str) -> None:
    assert mask_number(number) == masked


@pytest.mark.parametrize("empty", [None, ""])
def test_mask_number_of_nothing(empty: str | None) -> None:
    assert mask_number(empty) == NONE_MARK


def test_mask_number_without_digits_reveals_nothing() -> None:
    assert mask_number("abc") == "•••"


@pytest.mark.parametrize(
    ("user_id", "masked"),
    [
        ("US.1402938475629384790", "US.14…90"),
        ("DE.abcdefgh12", "DE.ab…12"),
        ("US.12345", "US.…"),  # too short to show both ends
        ("1402938475629384790", "14…90"),
    ],
)
def test_mask_user_id(user_id: str, masked: str) -> None:
    assert mask_user_id(user_id) == masked


def test_mask_user_id_of_nothing() -> None:
    assert mask_user_id(None) == NONE_MARK


def test_mask_recipient_picks_the_right_mask() -> None:
    assert mask_recipient("15551231234") == "•••••••1234"
    assert mask_recipient("US.1402938475629384790") == "US.14…90"
    assert mask_recipient(None) == NONE_MARK


@pytest.mark.parametrize("value", ["15551231234", "+49 151 23456789", "US.1402938475629384790"])
def test_masks_never_contain_the_full_identifier(value: str) -> None:
    digits = "".join(ch for ch in value if ch.isdigit())
    assert digits not in mask_recipient(value)
