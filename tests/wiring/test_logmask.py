"""Phone numbers and user ids never reach a log line in full."""

from __future__ import annotations

import logging
import sys

import pytest
from sqlalchemy import text
from sqlalchemy.exc import IntegrityError

from bot.wiring.logmask import (
    MAX_LINE,
    NONE_MARK,
    MaskingFormatter,
    mask_number,
    mask_recipient,
    mask_user_id,
)
from storage.db import make_engine


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


def test_every_log_line_is_masked_and_bounded_tracebacks_included():
    formatter = MaskingFormatter("%(levelname)s %(message)s")
    try:
        raise ValueError("could not store message from 971501234567 (US.13491208655302741918)")
    except ValueError:
        record = logging.LogRecord(
            "bot",
            logging.ERROR,
            __file__,
            1,
            "failed for %s",
            ("+971 50 123 4567",),
            sys.exc_info(),
        )
    line = formatter.format(record)
    assert "971501234567" not in line and "50 123 4567" not in line
    assert "13491208655302741918" not in line
    assert "••••••••4567" in line  # each number still told apart by its tail
    long = logging.LogRecord("bot", logging.INFO, __file__, 1, "x" * 100_000, (), None)
    assert len(formatter.format(long)) < MAX_LINE + 100


def test_database_errors_do_not_carry_the_values_into_logs(tmp_path):
    engine = make_engine(f"sqlite:///{tmp_path / 'x.db'}")
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE t (n TEXT NOT NULL UNIQUE)"))
        connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": "I agree, 971501234567"})
    with pytest.raises(IntegrityError) as raised, engine.begin() as connection:
        connection.execute(text("INSERT INTO t VALUES (:n)"), {"n": "I agree, 971501234567"})
    assert "971501234567" not in str(raised.value)
    assert "I agree" not in str(raised.value)
    engine.dispose()
