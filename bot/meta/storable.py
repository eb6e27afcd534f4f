"""Whether an event can be stored as it came: the column limits, and JSON the database can keep.

PostgreSQL refuses a value longer than its column, a NUL in text or JSON, and a number JSON
cannot spell (NaN, Infinity, what ``1e999`` reads as); SQLite keeps them all. Checking every
item here, against the numbers the tables are declared with (:mod:`storage.limits`), keeps both
backends alike and turns an item the database would refuse into a :class:`MalformedItem` for
support, instead of a failed transaction that would take its whole batch with it.

JSON is read with :data:`JSON_DECODER`, so a number that cannot be held becomes an
:class:`Unreadable` in place and spoils only the item it sits in.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterable, Mapping
from typing import Any

from bot.meta.envelope import ContactProfile
from bot.meta.events import InboundMessage, OtherChange, PreferenceUpdate, Status
from bot.meta.readers import ItemError, shown
from storage import limits

# Meta's deepest payloads nest about ten levels; JSON serialisers recurse once per level.
MAX_DEPTH = 32
_INT_DIGITS = 4300  # CPython's own limit on reading an int from text
_LITERAL_SHOWN = 24


class Unreadable:
    """A JSON number that cannot be held as a number: NaN, ±Infinity, 1e999, 5,000 digits."""

    __slots__ = ("literal", "size")

    def __init__(self, literal: str) -> None:
        self.literal = literal[:_LITERAL_SHOWN]
        self.size = len(literal)

    def __repr__(self) -> str:
        cut = "" if self.size <= _LITERAL_SHOWN else f"… ({self.size} characters)"
        return f"<number {self.literal}{cut}>"


def _float(literal: str) -> float | Unreadable:
    value = float(literal)
    return value if math.isfinite(value) else Unreadable(literal)


def _int(literal: str) -> int | Unreadable:
    return int(literal) if len(literal) <= _INT_DIGITS else Unreadable(literal)


# One decoder for every body: json.loads given hooks builds a decoder per call, which took
# longer than reading a one-status body with it (6 µs against 3.5).
JSON_DECODER = json.JSONDecoder(parse_constant=Unreadable, parse_float=_float, parse_int=_int)


def unstorable(value: Any) -> str | None:
    """Why this JSON value cannot be stored as it is, naming where; None when it can."""
    if _storable(value, 0):  # what nearly every item is: no path to build for a problem
        return None
    return _problem(value)


def _problem(value: Any) -> str | None:
    pending: list[tuple[Any, tuple[str, ...]]] = [(value, ())]
    while pending:
        item, path = pending.pop()
        if len(path) > MAX_DEPTH:
            return f"is nested more than {MAX_DEPTH} levels deep at {_where(path)}"
        if isinstance(item, str):
            if "\x00" in item:
                return f"holds a NUL character at {_where(path)}"
        elif isinstance(item, Mapping):
            for key, child in item.items():
                if "\x00" in key:
                    return f"holds a NUL character in a key at {_where(path)}"
                pending.append((child, (*path, key)))
        elif isinstance(item, list):
            pending.extend((child, (*path, f"[{i}]")) for i, child in enumerate(item))
        elif isinstance(item, Unreadable):
            return f"holds {item!r} at {_where(path)}, which cannot be stored as a number"
    return None


def _storable(value: Any, depth: int) -> bool:
    """unstorable(value) is None, without keeping the path to each part."""
    if depth > MAX_DEPTH:
        return False
    kind = type(value)
    if kind is str:
        return "\x00" not in value
    if kind is dict or (kind is not list and isinstance(value, Mapping)):
        for key, child in value.items():
            if "\x00" in key or not _storable(child, depth + 1):
                return False
    elif kind is list:
        for child in value:
            if not _storable(child, depth + 1):
                return False
    return kind is not Unreadable


def _where(path: tuple[str, ...]) -> str:
    shown = "".join(part if part.startswith("[") else f".{part}" for part in path[:8])
    shown = shown.lstrip(".") or "the top"
    shown = shown.encode("unicode_escape").decode("ascii")  # a key may hold anything
    return shown[:120] + ("…" if len(path) > 8 or len(shown) > 120 else "")


def support_copy(value: Any) -> bytes:
    """The JSON kept for support of an item that could not be stored as it came.

    Every character is kept, escaped where it must be (a NUL as ``\\u0000``, a lone surrogate
    as ``\\udXXX``); an unreadable number is written as a string naming it, and nesting beyond
    :data:`MAX_DEPTH` is cut with a note, so the copy is always valid JSON that any column keeps.
    """
    text = json.dumps(_clipped(value, 0), sort_keys=True, ensure_ascii=False)
    return text.encode("utf-8", "backslashreplace")


def _clipped(value: Any, depth: int) -> Any:
    if isinstance(value, Unreadable):
        return repr(value)
    if isinstance(value, Mapping | list) and depth >= MAX_DEPTH:
        return f"<cut: nested more than {MAX_DEPTH} levels deep>"
    if isinstance(value, Mapping):
        return {str(key): _clipped(child, depth + 1) for key, child in value.items()}
    if isinstance(value, list):
        return [_clipped(child, depth + 1) for child in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return repr(value)


def _fit(fields: Iterable[tuple[str, str | None, int]]) -> None:
    for name, value, limit in fields:
        if value is not None and len(value) > limit:
            raise ItemError(f"'{name}' is {len(value)} characters, over the {limit} stored")


def _raw(raw: Any) -> None:
    problem = unstorable(raw)
    if problem is not None:
        raise ItemError(problem)


def check_message(message: InboundMessage) -> None:
    """Raise :class:`ItemError` unless every part of the message fits where it is stored."""
    _fit(
        [
            ("id", message.wamid, limits.WAMID),
            ("from", message.wa_id, limits.WA_ID),
            ("from_user_id", message.user_id, limits.USER_ID),
            ("type", message.original_type, limits.MESSAGE_TYPE),
            ("context.id", message.context_wamid, limits.WAMID),
        ]
    )
    if (system := message.system) is not None:
        # The ids a number or user-id change moves the contact from and to.
        _fit(
            [
                ("system.wa_id", system.new_wa_id, limits.WA_ID),
                ("system.user_id", system.user_id, limits.USER_ID),
                ("system.previous_user_id", system.previous_user_id, limits.USER_ID),
                ("system.parent_user_id", system.parent_user_id, limits.USER_ID),
                (
                    "system.previous_parent_user_id",
                    system.previous_parent_user_id,
                    limits.USER_ID,
                ),
            ]
        )
    _raw(message.raw)


def check_status(status: Status) -> None:
    _fit(
        [
            ("id", status.wamid, limits.WAMID),
            ("recipient_id", status.recipient_id, limits.USER_ID),
            # Kept as the recipient where Meta gives no number.
            ("recipient_user_id", status.recipient_user_id, limits.USER_ID),
            # A group participant, kept by number, else by user id.
            ("recipient_participant_id", status.recipient_participant_id, limits.USER_ID),
            (
                "recipient_participant_user_id",
                status.recipient_participant_user_id,
                limits.USER_ID,
            ),
        ]
    )
    for error in status.errors:
        _fit(
            [
                ("errors[].title", error.title, limits.ERROR_TITLE),
                ("errors[].message", error.message, limits.ERROR_TITLE),
            ]
        )
        if error.code is not None and not limits.BIGINT_MIN <= error.code <= limits.BIGINT_MAX:
            raise ItemError(f"'errors[].code' {shown(error.code)} does not fit in 64 bits")
    _raw(status.raw)


def check_preference(preference: PreferenceUpdate) -> None:
    _fit(
        [
            ("wa_id", preference.wa_id, limits.WA_ID),
            ("user_id", preference.user_id, limits.USER_ID),
            ("category", preference.category, limits.PREFERENCE_CATEGORY),
            ("value", preference.value, limits.PREFERENCE_VALUE),
        ]
    )
    _raw(preference.raw)


def check_contact(contact: ContactProfile) -> None:
    _fit(
        [
            ("wa_id", contact.wa_id, limits.WA_ID),
            ("user_id", contact.user_id, limits.USER_ID),
            ("parent_user_id", contact.parent_user_id, limits.USER_ID),
            ("profile.name", contact.name, limits.PROFILE_NAME),
            ("profile.username", contact.username, limits.USERNAME),
            ("country_code", contact.country_code, limits.COUNTRY_CODE),
        ]
    )
    _no_nul(
        contact.wa_id,
        contact.user_id,
        contact.parent_user_id,
        contact.name,
        contact.username,
        contact.country_code,
    )


def check_other(other: OtherChange) -> None:
    _fit(
        [
            ("field", other.field, limits.CHANGE_FIELD),
            ("entry.id", other.entry_id, limits.ENTRY_ID),
        ]
    )
    _no_nul(other.field, other.entry_id)
    _raw(other.raw)


def check_phone_number_id(value: str) -> None:
    """Our number's id, from a change's metadata: every reply to the change goes out from it."""
    _fit([("phone_number_id", value, limits.PHONE_NUMBER_ID)])
    _no_nul(value)


def _no_nul(*values: str | None) -> None:
    # Values read from outside an item's own JSON (its change's metadata, its entry's id).
    if any(value is not None and "\x00" in value for value in values):
        raise ItemError("holds a NUL character")
