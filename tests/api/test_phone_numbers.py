"""C16: a number is accepted, refused and normalised exactly as phonenumbers' parser decides,
though most are decided without it (bot.api.phone). Held against the parser itself on tricky
spellings, on an example number of every region and type, and on random digits after every
country code."""

from __future__ import annotations

import random
from collections.abc import Callable, Iterator

import phonenumbers
import pytest
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneNumberFormat, PhoneNumberType

from bot.api.errors import ApiError
from bot.api.phone import plain_wa_id
from bot.api.validation import NUMBER_SHAPE, is_blank, wa_id_from
from storage import limits

TRICKY = [
    "+971 50 123 4567",
    "971501234567",
    "  +971501234567\t",
    "+971.50.123.4567",
    "+971-50-123-4567",
    "+971 (50) 123-4567",
    "00971501234567",
    "00 971 50 123 4567",
    "0971501234567",
    "+0971501234567",
    "+074951234567",
    "+01 650 555 1234",
    "0044 20 7946 0958",
    "+1 650-555-1234",
    "(650) 555-1234",
    "1 (650) 555 1234",
    "+1 800 555 0199",
    "+1 900 555 0199",
    "+1 204 555 0123",
    "+1 264 497 1234",
    "+1 555 555 5555",
    "+44 (0) 20 7946 0958",
    "+44 020 7946 0958",
    "+44 20 7946 0958",
    "+44 7700 900123",
    "+44 1624 456789",
    "+39 06 6982 1234",
    "+390669812345",
    "+39 0039 06 6982",
    "+54 9 11 1234 5678",
    "+54 11 15 1234 5678",
    "+52 1 55 1234 5678",
    "+52 55 1234 5678",
    "+7 495 123 45 67",
    "+7 7172 123456",
    "+7 8 495 123 45 67",
    "+800 1234 5678",
    "+882 1234 5678",
    "+979 1234 5678",
    "+49 1512 3456789",
    "+49 (0)151 23456789",
    "+61 4 1234 5678",
    "+61 04 1234 5678",
    "+61 8 9162 1234",
    "+86 139 1234 5678",
    "+91 98765 43210",
    "+91 098765 43210",
    "+33 6 12 34 56 78",
    "+33 06 12 34 56 78",
    "+262 692 12 34 56",
    "+590 690 00 12 34",
    "+47 412 34 567",
    "+358 18 12345",
    "+212 650 123456",
    "+599 9 123 4567",
    "+290 22158",
    "+971 50 123 456 7890",
    "+971 5",
    "+999 1234 5678",
    "+12345",
    "+1 2345",
    "12",
    "+٩٧١٥٠١٢٣٤٥٦٧",
    "+９７１５０１２３４５６７",
    "+971 50 123 4567 ext 12",
    "tel:+971501234567",
    "",
    " ",
    "+",
    "971501234567" * 3,
]


def library(value: str, known: Callable[[str], bool] | None) -> str:
    """wa_id_from as it was, every number through phonenumbers: the wa_id or the refusal."""
    try:
        if is_blank(value):
            return "required"
        if len(value) > limits.WA_ID:
            return "too long"
        spelled = value.strip(" \t")
        if spelled.startswith("00"):
            spelled = "+" + spelled[2:]
        if not NUMBER_SHAPE.fullmatch(spelled):
            return "not a phone number"
        if not spelled.startswith("+"):
            spelled = "+" + spelled
        number = phonenumbers.parse(spelled, None)
    except phonenumbers.NumberParseException:
        return "not possible"
    if not phonenumbers.is_possible_number(number):
        return "not possible"
    wa_id = phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]
    if not phonenumbers.is_valid_number(number) and not (known and known(wa_id)):
        return "not valid"
    return wa_id


def ours(value: str, known: Callable[[str], bool] | None) -> str:
    try:
        return wa_id_from(value, "wa_id", known=known)
    except ApiError as exc:
        message = exc.message
    for words, outcome in (
        ("is required", "required"),
        ("at most", "too long"),
        ("not a phone number", "not a phone number"),
        ("not a possible", "not possible"),
        ("not a valid", "not valid"),
    ):
        if words in message:
            return outcome
    raise AssertionError(message)


def examples() -> Iterator[str]:
    """An example number of every region and type the library has, as E.164 digits."""
    for code, regions in COUNTRY_CODE_TO_REGION_CODE.items():
        for region in regions:
            if region == "001":
                found = [phonenumbers.example_number_for_non_geo_entity(code)]
            else:
                found = [phonenumbers.example_number_for_type(region, t) for t in TYPES]
            for number in found:
                if number is not None:
                    yield phonenumbers.format_number(number, PhoneNumberFormat.E164)[1:]


TYPES = [
    getattr(PhoneNumberType, name)
    for name in ("FIXED_LINE", "MOBILE", "TOLL_FREE", "PREMIUM_RATE", "VOIP", "UAN", "PAGER")
]


def spellings(digits: str) -> list[str]:
    grouped = " ".join(digits[i : i + 3] for i in range(0, len(digits), 3))
    return [digits, "+" + digits, "00" + digits, "+" + grouped, "+" + grouped.replace(" ", "-")]


def varied(digits: str) -> list[str]:
    """The number, one digit short, one digit long, the last digit changed."""
    changed = digits[:-1] + str((int(digits[-1]) + 1) % 10)
    return [digits, digits[:-1], digits + "5", changed]


def test_c16_tricky_spellings_are_decided_as_the_parser_decides():
    for value in TRICKY:
        assert ours(value, None) == library(value, None), value
        assert ours(value, lambda _: True) == library(value, lambda _: True), value


def test_c16_every_region_and_type_is_decided_as_the_parser_decides():
    valid = fast = 0
    for example in examples():
        for digits in varied(example):
            for value in spellings(digits):
                expected = library(value, None)
                assert ours(value, None) == expected, value
            valid += expected.isdigit()
            fast += plain_wa_id(digits) is not None
        assert ours(example, lambda _: True) == library(example, lambda _: True), example
    # Most valid numbers are decided without the parser; the rest by it, as before.
    assert valid > 1000 and fast > 0.8 * valid, (valid, fast)


@pytest.mark.parametrize("seed", [1, 2])
def test_c16_random_digits_after_every_country_code_are_decided_as_the_parser_decides(seed):
    rng = random.Random(seed)
    for code in COUNTRY_CODE_TO_REGION_CODE:
        for length in range(1, 16):
            digits = str(code) + "".join(rng.choice("0123456789") for _ in range(length))
            if len(digits) <= limits.WA_ID:
                assert ours("+" + digits, None) == library("+" + digits, None), digits
