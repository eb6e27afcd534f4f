"""Builders of the exact JSON bodies Meta expects on ``POST /{phone-number-id}/messages``.

Every builder takes the person's address, a phone number (sent as ``to``) or a business-scoped
user id (sent as ``recipient``, CONTRACT section 5). Every builder is pure and checks Meta's
documented limits first: a message Meta would reject with error 100 or 131009 is refused here
with :class:`MessageLimitError`, before it is queued or sent, so that the mistake shows up in a
test rather than in a customer's silent chat.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from typing import Any

MESSAGING_PRODUCT = "whatsapp"

TEXT_BODY_MAX = 4096
BUTTONS_MIN = 1
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
BUTTON_ID_MAX = 256
BUTTONS_BODY_MAX = 1024
HEADER_MAX = 60
FOOTER_MAX = 60
LIST_BODY_MAX = 4096
LIST_BUTTON_LABEL_MAX = 20
LIST_SECTIONS_MAX = 10
LIST_SECTION_TITLE_MAX = 24
LIST_ROWS_MAX = 10  # across all sections together
LIST_ROW_ID_MAX = 200
LIST_ROW_TITLE_MAX = 24
LIST_ROW_DESCRIPTION_MAX = 72
TEMPLATE_NAME_MAX = 512
TEMPLATE_LANGUAGE_MAX = 16  # a locale code such as "en_US"; longer is a mistake
# A business-scoped user id: an ISO country code, a dot, then letters and digits (META.md).
USER_ID_SHAPE = re.compile(r"[A-Z]{2}\.[A-Za-z0-9]")

Button = tuple[str, str]  # (id, title)
Row = tuple[str, str, str | None]  # (id, title, description)
Section = tuple[str | None, Sequence[Row]]  # (title, rows)


class MessageLimitError(ValueError):
    """A message breaks one of Meta's limits and would be rejected; nothing was sent."""


def _preview(value: str, width: int = 40) -> str:
    return repr(value if len(value) <= width else value[:width] + "…")


def _check_text(what: str, value: str, limit: int) -> str:
    """Require a non-blank string of at most ``limit`` characters."""
    if not isinstance(value, str):
        raise MessageLimitError(f"{what} must be a string, got {type(value).__name__}")
    if not value.strip():
        raise MessageLimitError(f"{what} must not be empty")
    if len(value) > limit:
        raise MessageLimitError(
            f"{what} is {len(value)} characters, over Meta's limit of {limit}: {_preview(value)}"
        )
    return value


def _check_id(what: str, value: str, limit: int) -> str:
    _check_text(what, value, limit)
    # Meta refuses ids with surrounding spaces, and the webhook would echo a different string.
    if value != value.strip():
        raise MessageLimitError(f"{what} must not start or end with spaces: {value!r}")
    return value


def is_user_id(value: str) -> bool:
    """A business-scoped user id ("US.13491208655302741918"), not a phone number."""
    return USER_ID_SHAPE.match(value) is not None


def address(to: str) -> dict[str, str]:
    """How Meta addresses a person: a number in `to`; a business-scoped user id in `recipient`
    and no `to` (with both, Meta would go by `to`)."""
    if not isinstance(to, str) or not to.strip():
        raise MessageLimitError("recipient 'to' must be a non-empty phone number or user id")
    return {"recipient": to} if is_user_id(to) else {"to": to}


def recipient_of(payload: dict[str, Any]) -> str | None:
    """Whom a message body is addressed to, by number or by user id."""
    return payload.get("to") or payload.get("recipient")


def readdressed(payload: dict[str, Any], to: str) -> dict[str, Any]:
    """The same message addressed to `to` (the person's number if known, else their user id)."""
    body = {k: v for k, v in payload.items() if k not in ("to", "recipient")}
    envelope = _envelope(to, payload.get("type", "text"))
    return {**envelope, **{k: v for k, v in body.items() if k not in envelope}}


def _envelope(to: str, kind: str) -> dict[str, Any]:
    return {
        "messaging_product": MESSAGING_PRODUCT,
        "recipient_type": "individual",
        **address(to),
        "type": kind,
    }


def _decorate(interactive: dict[str, Any], header: str | None, footer: str | None) -> None:
    """Add the optional text header and footer shared by button and list messages."""
    if header is not None:
        interactive["header"] = {"type": "text", "text": _check_text("header", header, HEADER_MAX)}
    if footer is not None:
        interactive["footer"] = {"text": _check_text("footer", footer, FOOTER_MAX)}


def text_payload(to: str, body: str, *, preview_url: bool = False) -> dict[str, Any]:
    """A plain text message (only within the 24-hour customer service window)."""
    payload = _envelope(to, "text")
    payload["text"] = {
        "preview_url": preview_url,
        "body": _check_text("text body", body, TEXT_BODY_MAX),
    }
    return payload


def buttons_payload(
    to: str,
    body: str,
    buttons: Sequence[Button],
    *,
    header: str | None = None,
    footer: str | None = None,
) -> dict[str, Any]:
    """An interactive message with one to three reply buttons, each given as ``(id, title)``."""
    _check_text("button message body", body, BUTTONS_BODY_MAX)
    if not BUTTONS_MIN <= len(buttons) <= BUTTONS_MAX:
        raise MessageLimitError(
            f"a button message needs {BUTTONS_MIN} to {BUTTONS_MAX} buttons, got {len(buttons)}"
        )
    seen_ids: set[str] = set()
    seen_titles: set[str] = set()
    replies = []
    for button_id, title in buttons:
        _check_id("button id", button_id, BUTTON_ID_MAX)
        _check_text("button title", title, BUTTON_TITLE_MAX)
        # Duplicates would make a reply ambiguous; Meta also refuses repeated titles.
        if button_id in seen_ids:
            raise MessageLimitError(f"button ids must be unique: {button_id!r} is repeated")
        if title in seen_titles:
            raise MessageLimitError(f"button titles must be unique: {title!r} is repeated")
        seen_ids.add(button_id)
        seen_titles.add(title)
        replies.append({"type": "reply", "reply": {"id": button_id, "title": title}})

    interactive: dict[str, Any] = {"type": "button"}
    _decorate(interactive, header, footer)
    interactive["body"] = {"text": body}
    interactive["action"] = {"buttons": replies}
    payload = _envelope(to, "interactive")
    payload["interactive"] = interactive
    return payload


def list_payload(
    to: str,
    body: str,
    button_label: str,
    sections: Sequence[Section],
    *,
    header: str | None = None,
    footer: str | None = None,
) -> dict[str, Any]:
    """An interactive list: a button that opens up to ten rows, grouped in titled sections.

    ``sections`` holds ``(title, rows)`` with rows as ``(id, title, description)``; a title or a
    description of ``None`` is left out. Meta requires section titles once there are two sections.
    """
    _check_text("list message body", body, LIST_BODY_MAX)
    _check_text("list button label", button_label, LIST_BUTTON_LABEL_MAX)
    if not 1 <= len(sections) <= LIST_SECTIONS_MAX:
        raise MessageLimitError(
            f"a list needs 1 to {LIST_SECTIONS_MAX} sections, got {len(sections)}"
        )
    total_rows = sum(len(rows) for _, rows in sections)
    if total_rows > LIST_ROWS_MAX:
        raise MessageLimitError(
            f"a list holds at most {LIST_ROWS_MAX} rows across all sections, got {total_rows}"
        )

    seen_ids: set[str] = set()
    built_sections = []
    for index, (section_title, rows) in enumerate(sections, start=1):
        section: dict[str, Any] = {}
        if section_title is not None:
            section["title"] = _check_text("section title", section_title, LIST_SECTION_TITLE_MAX)
        elif len(sections) > 1:
            raise MessageLimitError(f"section {index} needs a title: the list has several sections")
        if not rows:
            raise MessageLimitError(f"section {index} has no rows")
        built_rows = []
        for row_id, row_title, description in rows:
            _check_id("row id", row_id, LIST_ROW_ID_MAX)
            if row_id in seen_ids:
                raise MessageLimitError(f"row ids must be unique: {row_id!r} is repeated")
            seen_ids.add(row_id)
            row = {"id": row_id, "title": _check_text("row title", row_title, LIST_ROW_TITLE_MAX)}
            if description is not None:
                row["description"] = _check_text(
                    "row description", description, LIST_ROW_DESCRIPTION_MAX
                )
            built_rows.append(row)
        section["rows"] = built_rows
        built_sections.append(section)

    interactive: dict[str, Any] = {"type": "list"}
    _decorate(interactive, header, footer)
    interactive["body"] = {"text": body}
    interactive["action"] = {"button": button_label, "sections": built_sections}
    payload = _envelope(to, "interactive")
    payload["interactive"] = interactive
    return payload


def template_payload(
    to: str,
    name: str,
    language: str,
    components: list[dict[str, Any]] | None = None,
    *,
    policy: str | None = None,
) -> dict[str, Any]:
    """An approved template, the only kind of message allowed outside the 24-hour window.

    ``components`` is passed through as Meta documents it (header, body and button parameters);
    their content is checked by Meta against the approved template, not here.
    """
    code = {"code": _check_text("template language", language, TEMPLATE_LANGUAGE_MAX)}
    template: dict[str, Any] = {
        "name": _check_text("template name", name, TEMPLATE_NAME_MAX),
        "language": code | ({"policy": policy} if policy else {}),
    }
    if components:
        template["components"] = list(components)
    payload = _envelope(to, "template")
    payload["template"] = template
    return payload


def read_receipt_payload(message_id: str) -> dict[str, Any]:
    """Mark an inbound message (and those before it) as read: the two blue ticks."""
    if not isinstance(message_id, str) or not message_id.strip():
        raise MessageLimitError("message_id must be a non-empty wamid")
    return {"messaging_product": MESSAGING_PRODUCT, "status": "read", "message_id": message_id}
