"""Entry points: a wa.me link or QR code (on a poster, a receipt, in an IVR script) opens the
chat with a prefilled text that carries the link's source tag.

The text is only a greeting the person sends themselves: it is never consent (C02), and the
conversation it opens is asked explicitly as any other. The tag is remembered so that the
grants answering that prompt record which poster worked.
"""

from __future__ import annotations

import re

from flows import texts

# What a business may name an entry point with: poster-42, receipt.v2, ivr_main.
TAG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")
# The marker the prefilled text ends with; ASCII in every language, so it survives any script.
_MARK = re.compile(r"\(ref: ?([A-Za-z0-9][A-Za-z0-9_.-]{0,63})\)")


def is_tag(value: str) -> bool:
    return TAG.fullmatch(value) is not None


def prefilled_text(company: str, language: str, tag: str | None) -> str:
    """The greeting a link puts in the composer, in that language, marked with the tag."""
    greeting = texts.text(language, "link_greeting", company=company)
    return f"{greeting} (ref: {tag})" if tag else greeting


def entry_point_in(text: str | None) -> str | None:
    """The source tag a prefilled text carries, if this message is one."""
    found = _MARK.search(text or "")
    return found.group(1) if found else None
