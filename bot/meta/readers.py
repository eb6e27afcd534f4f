"""Tolerant readers for Meta's untrusted JSON: a wrong type reads as absent, never crashes.

Only the modules of ``bot.meta`` read raw payload dicts, and they read them through these
functions. The ``require_*`` readers and :func:`parse_timestamp` raise :class:`ItemError`
naming what is missing or wrong, relative to the item; the parser prefixes the item's path.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any


class ItemError(ValueError):
    """One message, status, preference or contact in a body cannot be read."""


def get_dict(payload: Mapping[str, Any], key: str) -> Mapping[str, Any]:
    value = payload.get(key)
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
        raise ItemError(f"'{key}' is not a non-empty string: {value!r}")
    return value


def parse_timestamp(value: object, key: str = "timestamp") -> datetime:
    """Meta's epoch seconds, a string in messages and statuses, an int in user_preferences."""
    if value is None:
        raise ItemError(f"missing '{key}'")
    if isinstance(value, bool):  # bool is an int subclass; True is not a time
        raise ItemError(f"'{key}' is not epoch seconds: {value!r}")
    if isinstance(value, int):
        seconds = value
    # isascii: str.isdigit() accepts Arabic-Indic digits, which int() would happily read.
    elif isinstance(value, str) and value.isascii() and value.isdigit():
        seconds = int(value)
    else:
        raise ItemError(f"'{key}' is not epoch seconds: {value!r}")
    try:
        return datetime.fromtimestamp(seconds, tz=UTC)
    except (OverflowError, OSError, ValueError):
        raise ItemError(f"'{key}' is out of range: {value!r}") from None


def require_aware(value: datetime, name: str) -> None:
    """Refuse a naive time in an event: Meta's times are UTC, and ordering relies on them."""
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")
