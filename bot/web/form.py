"""The hosted page's form, read and checked: the ticked categories, the number in any usual
spelling, the entry point and the page's language and version."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field

import phonenumbers

from bot.api.errors import ApiError
from bot.api.validation import wa_id_from
from flows.catalog import Catalog
from flows.entry import is_tag

PHONE_MAX = 40  # characters typed: longer is not a phone number


@dataclass(frozen=True, slots=True, kw_only=True)
class Answers:
    """What the person entered; problems name the words (wording.WORDS keys) to show."""

    categories: tuple[str, ...] = ()
    phone: str = ""
    wa_id: str | None = None
    problems: tuple[str, ...] = field(default=())


def entry_point(value: str | None) -> str | None:
    """The source tag of the link that led here, if it is one; anything else is dropped."""
    return value if value and is_tag(value) else None


def read(form: Mapping[str, str], ticked: list[str], catalog: Catalog) -> Answers:
    known = set(catalog.category_ids)
    categories = catalog.in_order(frozenset(c for c in ticked if c in known))
    phone = (form.get("phone") or "").strip()[:PHONE_MAX]
    wa_id = phone_number(phone, catalog)
    problems = []
    if not categories:
        problems.append("no_category")
    if wa_id is None:
        problems.append("bad_phone")
    return Answers(categories=categories, phone=phone, wa_id=wa_id, problems=tuple(problems))


def phone_number(typed: str, catalog: Catalog) -> str | None:
    """A wa_id from an international number in any spelling ("+971 50 123 4567", "00971...");
    a national one ("(650) 555-1234") is read in the country of the company's own number."""
    if not typed:
        return None
    try:
        return wa_id_from(typed, "phone")
    except ApiError:
        pass
    region = _home_region(catalog.company.whatsapp_number)
    if region is None:
        return None
    try:
        number = phonenumbers.parse(typed, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]


def _home_region(whatsapp_number: str | None) -> str | None:
    if not whatsapp_number:
        return None
    try:
        number = phonenumbers.parse("+" + whatsapp_number, None)
    except phonenumbers.NumberParseException:
        return None
    # The country calling code's main region: a test range number still names its country.
    region = phonenumbers.region_code_for_number(
        number
    ) or phonenumbers.region_code_for_country_code(number.country_code)
    return region if region and region != phonenumbers.UNKNOWN_REGION else None
