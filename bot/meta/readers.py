"""Tolerant readers for Meta's untrusted JSON: a wrong type reads as absent, never crashes.

Only the modules of ``bot.meta`` read raw payload dicts, and they read them through these
functions. The ``require_*`` readers and :func:`parse_timestamp` raise :class:`ItemError`
naming what is missing or wrong, relative to the item; the parser prefixes the item's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

# Meta cannot have stamped anything before WhatsApp existed, and its clock is not a day ahead of
# ours: a time outside that window is not Meta's, and code that adds a day to it must not fail.
EARLIEST = datetime(2009, 1, 1, tzinfo=UTC)
AHEAD = timedelta(days=1)
_SHOWN = 40  # characters of a wrong value quoted in a problem: enough to recognise it


class ItemError(ValueError):
    """One message, status, preference or contact in a body cannot be read."""


def get_dict(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
    if value is None or type(value) is dict:  # what JSON reads as: no need to ask the ABC
        return value or {}
    return value if isinstance(value, Mapping) else {}


def get_list(payload: Mapping[str, Any], key: str) -> list[Any]:
    value = payload.get(key)
    return value if isinstance(value, list) else []


def get_str(payload: Mapping[str, Any], key: str) -> str | None:
    value = payload.get(key)
    return value if isinstance(value, str) else None


def get_float(payload: Mapping[str, Any], key: str) -> float | None:
    value = payload.get(key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    return float(value)


def get_bool(payload: Mapping[str, Any], key: str) -> bool | None:
    value = payload.get(key)
    return value if isinstance(value, bool) else None


def require_str(payload: Mapping[str, Any], key: str) -> str:
    value = payload.get(key)
    if value is None:
        raise ItemError(f"missing '{key}'")
    if not isinstance(value, str) or not value:
        raise ItemError(f"'{key}' is not a non-empty string: {shown(value)}")
    return value


def shown(value: object) -> str:
    """A wrong value as a problem quotes it: its repr, cut short (it may be megabytes long)."""
    text = repr(value)
    return text if len(text) <= _SHOWN else f"{text[:_SHOWN]}… ({len(text)} characters)"


def parse_timestamp(value: object, key: str = "timestamp") -> datetime:
    """Meta's epoch seconds, a string in messages and statuses, an int in user_preferences,
    between :data:`EARLIEST` and a day ahead of now."""
    if value is None:
        raise ItemError(f"missing '{key}'")
    if isinstance(value, bool):  # bool is an int subclass; True is not a time
        raise ItemError(f"'{key}' is not epoch seconds: {shown(value)}")
    if isinstance(value, int):
        seconds = value
    # isascii: str.isdigit() accepts Arabic-Indic digits, which int() would happily read.
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        if len(value) > 12:  # past year 9999; and int() refuses thousands of digits
            raise _out_of_range(key, value)
        seconds = int(value)
    else:
        raise ItemError(f"'{key}' is not epoch seconds: {shown(value)}")
    try:
        when = datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise _out_of_range(key, value) from None
    if not EARLIEST <= when <= datetime.now(UTC) + AHEAD:
        raise _out_of_range(key, value)
    return when


def _out_of_range(key: str, value: object) -> ItemError:
    # Built only when raised: quoting the value costs more than reading a good one.
    return ItemError(f"'{key}' is out of range: {shown(value)}")


def require_aware(value: datetime, name: str) -> None:
    """Refuse a naive time in an event: Meta's times are UTC, and ordering relies on them."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
