"""A number already written as plain international digits, accepted without phonenumbers' general
parser: a tenth of its cost, for the millions of rows of an import.

`plain_wa_id` only ever accepts. It takes phonenumbers' own route for such a spelling (country
code, national number, possible length, region, type patterns) with the library's metadata and
hands back None wherever that route branches (a national prefix to strip, a leading zero, an
unknown country code, a length or pattern that fails), so that the library itself decides those
and words the refusal: the numbers accepted stay exactly the library's.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata, region_code_for_country_code
from phonenumbers.phonemetadata import PhoneNumberDesc

# phonenumbers' own bounds on a national significant number.
NSN_MIN, NSN_MAX = 2, 17
_CODES = {str(code): code for code in COUNTRY_CODE_TO_REGION_CODE}
_TYPE_DESCS = (
    "premium_rate",
    "toll_free",
    "shared_cost",
    "voip",
    "personal_number",
    "pager",
    "uan",
    "voicemail",
    "fixed_line",
)


@dataclass(frozen=True, slots=True)
class _Region:
    """What deciding validity for one region needs, compiled once."""

    leading_digits: re.Pattern[str] | None
    general: dict[int, re.Pattern[str]]  # by length: the general pattern, if that length may be
    typed: dict[int, re.Pattern[str]]  # by length: any pattern of a type, as one alternation


@dataclass(frozen=True, slots=True)
class _Country:
    national_prefix: re.Pattern[str] | None  # the main region's prefix for parsing
    possible_lengths: frozenset[int]  # the main region's, local-only lengths included
    regions: tuple[_Region, ...]


_COUNTRIES: dict[int, _Country | None] = {}  # compiled at a country's first number
_UNSEEN: Any = object()


def plain_wa_id(digits: str) -> str | None:
    """The wa_id of a number written as ASCII digits, country code first, when phonenumbers
    would parse it unchanged and find it possible and valid; None: let phonenumbers decide."""
    for size in (1, 2, 3):  # the first prefix that is a country code is the library's choice
        code = _CODES.get(digits[:size])
        if code is not None:
            break
    else:
        return None  # no country code (none starts with 0)
    national = digits[size:]
    if not NSN_MIN <= len(national) <= NSN_MAX or national[0] == "0":
        return None  # too short or long, or leading zeros the library keeps apart
    country = _COUNTRIES.get(code, _UNSEEN)
    if country is _UNSEEN:
        country = _COUNTRIES[code] = _country(code)
    if country is None or len(national) not in country.possible_lengths:
        return None
    if country.national_prefix is not None and country.national_prefix.match(national):
        return None  # the library may strip it
    if len(country.regions) == 1:  # the library asks no leading digits of a lone region
        return digits if _valid(country.regions[0], national) else None
    for region in country.regions:
        if region.leading_digits is None:
            if _valid(region, national):
                return digits
        elif region.leading_digits.match(national):
            return digits if _valid(region, national) else None
    return None


def _valid(region: _Region, national: str) -> bool:
    """phonenumbers' _number_type_helper(...) != UNKNOWN."""
    general = region.general.get(len(national))
    typed = region.typed.get(len(national))
    return bool(general and typed and general.fullmatch(national) and typed.fullmatch(national))


def _country(code: int) -> _Country | None:
    main = PhoneMetadata.metadata_for_region_or_calling_code(
        code, region_code_for_country_code(code)
    )
    names = COUNTRY_CODE_TO_REGION_CODE[code]
    found = [PhoneMetadata.metadata_for_region_or_calling_code(code, name) for name in names]
    if main is None or None in found:
        return None  # never seen in the library's data; left to the library all the same
    general = main.general_desc
    regions = [_region(metadata) for metadata in found if metadata is not None]
    prefix = main.national_prefix_for_parsing
    return _Country(
        national_prefix=re.compile(prefix) if prefix else None,
        possible_lengths=frozenset(general.possible_length)
        | frozenset(general.possible_length_local_only),
        regions=tuple(regions),
    )


def _region(metadata: PhoneMetadata) -> _Region:
    descs: list[PhoneNumberDesc | None] = [getattr(metadata, name) for name in _TYPE_DESCS]
    if not metadata.same_mobile_and_fixed_line_pattern:
        descs.append(metadata.mobile)
    lengths = range(NSN_MIN, NSN_MAX + 1)
    general = {n: p for n in lengths if (p := _pattern([metadata.general_desc], n)) is not None}
    typed = {n: p for n in lengths if (p := _pattern(descs, n)) is not None}
    leading = metadata.leading_digits
    return _Region(re.compile(leading) if leading else None, general, typed)


def _pattern(descs: list[PhoneNumberDesc | None], length: int) -> re.Pattern[str] | None:
    """One pattern matching a number of this length wherever one of descs does
    (phonenumbers' _is_number_matching_desc), or None when none can."""
    patterns = [
        desc.national_number_pattern
        for desc in descs
        if desc is not None
        and desc.national_number_pattern
        and (not desc.possible_length or length in desc.possible_length)
    ]
    if not patterns:
        return None
    return re.compile("|".join(f"(?:{p})" for p in patterns))
