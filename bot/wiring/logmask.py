"""Masking of personal identifiers before they reach a log line.

Logs travel further than the database (aggregators, support tickets, terminals), so a phone number
or a WhatsApp user id is never written in full: enough is kept to tell two contacts apart while
reading, not enough to contact anyone.
"""

from __future__ import annotations

import hashlib
import logging
import re

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


# Anything shaped like a wa_id (8 to 15 digits in a row, as E.164 allows, "+" optional; spelled
# with spaces only after a "+") or a business-scoped user id, wherever it appears: a traceback or
# a library's message included. Dates and times never hold 8 digits in a row.
_NUMBER_LIKE = re.compile(r"(?<![\w+])(?:\+?\d{8,15}|\+\d[\d ()-]{6,18}\d)(?!\w)")
_USER_ID_LIKE = re.compile(r"\b[A-Z]{2}\.[A-Za-z0-9]{6,}\b")
MAX_LINE = 4096  # a few KB: a runaway body or parameter list never floods the log


def mask_text(text: str) -> str:
    """Mask every number- or user-id-shaped run in free text."""
    text = _USER_ID_LIKE.sub(lambda m: mask_user_id(m.group(0)), text)
    return _NUMBER_LIKE.sub(lambda m: mask_number(m.group(0)), text)


class MaskingFormatter(logging.Formatter):
    """The last line of defence: whole records, tracebacks included, masked and bounded."""

    def format(self, record: logging.LogRecord) -> str:
        line = mask_text(super().format(record))
        if len(line) > MAX_LINE:
            line = line[:MAX_LINE] + f" {ELLIPSIS}[{len(line) - MAX_LINE} more characters]"
        return line
