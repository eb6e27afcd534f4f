"""Each row of a consent import checked as POST /api/v1/consents checks its body (the same
functions, in the same order, so the same first problem is named), at a million rows' pace: a
category list or a consent text repeats across a file and is checked once."""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import datetime
from typing import NamedTuple, TypeVar

from bot.api.errors import ApiError
from bot.api.validation import (
    EVIDENCE_MAX_BYTES,
    ConsentRequest,
    categories_from,
    check_evidence,
    consent_text_from,
    contact_key_from,
    timestamp_from,
)
from flows.catalog import Catalog
from flows.policy import ConsentSource
from flows.versioning import text_version

T = TypeVar("T")
CACHED = 4096  # distinct category lists, and texts, remembered; a file rarely has more


class Checked(NamedTuple):
    line: int
    wa_id: str  # a wa_id, or a business-scoped user id
    categories: tuple[str, ...]
    collected_at: datetime
    text: str
    version: str  # of the text


class RowCheck:
    """The checks of one file's rows: `check(line, wa_id, categories, collected_at, text)` with
    the cells as read; raises ApiError with the API's message."""

    def __init__(
        self, catalog: Catalog, source: ConsentSource, file_name: str, known: Callable[[str], bool]
    ) -> None:
        self.catalog, self.source, self.file_name, self.known = catalog, source, file_name, known
        self._categories: dict[str, tuple[str, ...] | ApiError] = {}
        self._texts: dict[str, str | ApiError] = {}
        # The evidence is {"import_file": name, "line": n}: when it fits with the longest line
        # number a file can have, it fits on every row (checked per row otherwise).
        self._evidence_fits = _fits(file_name, 10**15)

    def check(
        self, line: int, wa_id: str, categories: str, collected_at: str, text: str
    ) -> Checked:
        key = contact_key_from(wa_id, "wa_id", known=self.known)
        found = self._categories.get(categories)
        if found is None:
            found = _outcome(lambda: categories_from(_split(categories), self.catalog))
            _remember(self._categories, categories, found)
        if isinstance(found, ApiError):
            raise _again(found)
        when = timestamp_from(collected_at.strip(), "collected_at")
        version = self._texts.get(text)
        if version is None:
            version = _outcome(lambda: text_version(consent_text_from(text)))
            _remember(self._texts, text, version)
        if isinstance(version, ApiError):
            raise _again(version)
        if not self._evidence_fits:
            check_evidence(self.evidence(line))
        return Checked(line, key, found, when, text, version)

    def evidence(self, line: int) -> dict[str, str | int]:
        return {"import_file": self.file_name, "line": line}

    def request(self, row: Checked) -> ConsentRequest:
        return ConsentRequest(
            wa_id=row.wa_id,
            categories=row.categories,
            granted=True,
            source=self.source,
            collected_at=row.collected_at,
            text=row.text,
            evidence=self.evidence(row.line),
        )


def _split(cell: str) -> list[str]:
    return [c.strip() for c in cell.split(";") if c.strip()]


def _outcome(compute: Callable[[], T]) -> T | ApiError:
    try:
        return compute()
    except ApiError as exc:
        return exc


def _remember(cache: dict[str, T], key: str, value: T) -> None:
    if len(cache) >= CACHED:
        cache.clear()  # a file of ever-new values: keep memory flat
    cache[key] = value


def _again(error: ApiError) -> ApiError:
    """A fresh exception each time: re-raising one would grow its traceback row after row."""
    return ApiError(error.status, error.code, error.message)


def _fits(file_name: str, line: int) -> bool:
    size = len(json.dumps({"import_file": file_name, "line": line}, ensure_ascii=False).encode())
    return size <= EVIDENCE_MAX_BYTES
