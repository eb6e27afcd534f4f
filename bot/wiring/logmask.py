"""Masking of personal identifiers before they reach a log line.

Logs travel further than the database (aggregators, support tickets, terminals), so a phone number
or a WhatsApp user id is never written in full: enough is kept to tell two contacts apart while
reading, not enough to contact anyone.
"""

from __future__ import annotations

import hashlib

BULLET = "•"
ELLIPSIS = "…"
NONE_MARK = "(none)"

_KEEP_DIGITS = 4  # the tail of a number, as on a card receipt
_USER_ID_KEEP = 2  # leading and trailing characters of a user id's opaque part


def mask_number(number: str | None) -> str:
    """Mask a phone number (wa_id or E.164), keeping its last four digits: "•••••••1234".

    Formatting (``+``, spaces, dashes) is dropped. A number of four digits or fewer is masked
    entirely, since its "tail" would be the whole number.
    """
    if not number:
        return NONE_MARK
    digits = "".join(ch for ch in number if ch.isdigit())
    if not digits:
        return BULLET * len(number)
    if len(digits) <= _KEEP_DIGITS:
        return BULLET * len(digits)
    return BULLET * (len(digits) - _KEEP_DIGITS) + digits[-_KEEP_DIGITS:]


def mask_user_id(user_id: str | None) -> str:
    """Mask a business-scoped user id, keeping its country prefix and both ends: "US.14…90"."""
    if not user_id:
        return NONE_MARK
    prefix, dot, rest = user_id.partition(".")
    if not dot:
        prefix, rest = "", user_id
    else:
        prefix += dot
    if len(rest) <= 2 * _USER_ID_KEEP + 1:
        return prefix + ELLIPSIS
    return prefix + rest[:_USER_ID_KEEP] + ELLIPSIS + rest[-_USER_ID_KEEP:]


def mask_recipient(value: str | None) -> str:
    """Mask whichever identifier a message is addressed to: a phone number or a user id."""
    if value and any(ch.isalpha() for ch in value):
        return mask_user_id(value)
    return mask_number(value)


def fingerprint(secret: str) -> str:
    """A short, stable name for a token that does not reveal it."""
    return hashlib.sha256(secret.encode()).hexdigest()[:8]
