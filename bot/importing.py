"""`flask --app wsgi consent import FILE.csv --source paper|web|sms|email|ivr`: consent collected
on paper forms, in IVR logs and elsewhere, recorded row by row as POST /api/v1/consents would.

The file is read as a stream, in batches of one transaction each, so memory stays flat however
long it is. Each row goes through the API's own validation (bot.api.validation) and recording
(bot.intake); a row that fails goes to FILE.rejects.csv with the reason. A row already in the
ledger (same number, categories, collected_at, text and source) is not recorded again, so an
import that stopped half-way, or ran twice, is simply run again.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlmodel import Session

from bot.api.errors import ApiError
from bot.api.validation import ConsentRequest, consent_request
from bot.intake import record_collected
from bot.wiring.services import Services
from flows.policy import RECORDABLE_SOURCES, ConsentSource
from storage.contacts import find_contact
from storage.db import session_scope

COLUMNS = ("wa_id", "categories", "collected_at", "text")
# Consent collected elsewhere; an opt-in on WhatsApp is recorded by the bot itself.
IMPORT_SOURCES = tuple(s.value for s in RECORDABLE_SOURCES if s is not ConsentSource.WHATSAPP)
BATCH_ROWS = 2000


class UnusableFile(Exception):
    """The file cannot be imported at all (missing, not UTF-8 CSV, wrong header)."""


@dataclass(slots=True)
class ImportReport:
    rows: int = 0
    recorded: int = 0
    already: int = 0  # recorded by an earlier run
    rejected: int = 0
    confirmations: int = 0  # double opt-in templates queued
    seconds: float = 0.0
    rejects_path: Path | None = None
    stopped: str | None = None  # why the file became unusable part-way (earlier batches stand)

    @property
    def exit_code(self) -> int:
        if self.stopped:
            return 2
        return 1 if self.rejected else 0


@dataclass(slots=True)
class _Row:
    line: int
    raw: list[str]
    request: ConsentRequest


@dataclass(slots=True)
class _Rejects:
    """FILE.rejects.csv, opened at the first rejected row: the row as read, its line, why."""

    path: Path
    header: list[str]
    _file: IO[str] | None = None
    _writer: object = None
    count: int = 0
    reasons: dict[str, int] = field(default_factory=dict)

    def add(self, line: int, raw: list[str], reason: str) -> None:
        if self._file is None:
            self._file = self.path.open("w", encoding="utf-8", newline="")
            self._writer = csv.writer(self._file)
            self._writer.writerow([*self.header, "line", "reason"])  # type: ignore[attr-defined]
        width = len(self.header)
        # A row of the wrong width keeps its cells in the header's columns: short ones padded,
        # the overflow of long ones joined into the last.
        cells = [*raw[: width - 1], ",".join(raw[width - 1 :])] if len(raw) > width else raw
        cells = cells + [""] * (width - len(cells))
        self._writer.writerow([*cells, line, reason])  # type: ignore[attr-defined]
        self.count += 1

    def close(self) -> None:
        if self._file is not None:
            self._file.close()
        elif self.path.exists():
            self.path.unlink()  # no rejects this time: an old file would mislead


def rejects_path(path: Path) -> Path:
    return path.with_name(path.name.removesuffix(".csv") + ".rejects.csv")


def import_file(
    app_services: Services,
    path: Path,
    source: str,
    *,
    batch_rows: int = BATCH_ROWS,
    progress: Callable[[int, ImportReport], None] | None = None,
) -> ImportReport:
    """Import the file; `progress(bytes_read, report)` is called after every batch."""
    if source not in IMPORT_SOURCES:
        raise UnusableFile(f"--source must be one of {', '.join(IMPORT_SOURCES)}")
    try:
        binary = path.open("rb")
    except OSError as exc:
        raise UnusableFile(f"{path}: cannot be read ({exc.strerror or exc})") from None
    report = ImportReport()
    started = time.monotonic()
    with binary:
        text = io.TextIOWrapper(binary, encoding="utf-8-sig", newline="")
        reader = csv.reader(text, strict=True)
        header = _header(reader, path)
        rejects = _Rejects(rejects_path(path), header)
        positions = [header.index(column) for column in COLUMNS]
        try:
            batches = _batches(
                app_services, reader, header, positions, path, source, rejects, batch_rows
            )
            for batch in batches:
                _record(app_services, batch, rejects, report)
                report.rows = reader.line_num - 1
                report.rejected = rejects.count
                report.seconds = time.monotonic() - started
                if progress is not None:
                    progress(binary.tell(), report)
        except (UnicodeDecodeError, csv.Error) as exc:
            report.stopped = f"line {reader.line_num + 1}: {_unreadable(exc)}"
        finally:
            rejects.close()
    report.rows = max(reader.line_num - 1, 0)
    report.rejected = rejects.count
    report.rejects_path = rejects.path if rejects.count else None
    report.seconds = time.monotonic() - started
    return report


def _header(reader: Iterator[list[str]], path: Path) -> list[str]:
    try:
        header = [name.strip().lower() for name in next(reader)]
    except StopIteration:
        raise UnusableFile(f"{path}: the file is empty") from None
    except (UnicodeDecodeError, csv.Error) as exc:
        raise UnusableFile(f"{path}: {_unreadable(exc)}") from None
    missing = [column for column in COLUMNS if column not in header]
    if missing:
        raise UnusableFile(
            f"{path}: the header must name {','.join(COLUMNS)}; missing {', '.join(missing)}"
        )
    return header


def _unreadable(exc: Exception) -> str:
    if isinstance(exc, UnicodeDecodeError):
        return "not UTF-8 text (save the file as CSV UTF-8)"
    return f"not readable as CSV ({exc})"


def _batches(
    app_services: Services,
    reader: csv.Reader,  # type: ignore[name-defined]
    header: list[str],
    positions: list[int],
    path: Path,
    source: str,
    rejects: _Rejects,
    batch_rows: int,
) -> Iterator[list[_Row]]:
    """Valid rows in batches; invalid ones go straight to the rejects."""
    catalog = app_services.catalog
    wa_id, categories, collected_at, text = positions
    known = _known(app_services)
    batch: list[_Row] = []
    for raw in reader:
        line = reader.line_num
        if len(raw) != len(header):
            if not any(cell.strip() for cell in raw):
                continue  # a blank line
            rejects.add(line, raw, f"expected {len(header)} columns, found {len(raw)}")
            continue
        body = {
            "wa_id": raw[wa_id],
            "categories": [c.strip() for c in raw[categories].split(";") if c.strip()],
            "granted": True,
            "source": source,
            "collected_at": raw[collected_at].strip(),
            "text": raw[text],
            "evidence": {"import_file": path.name, "line": line},
        }
        try:
            request = consent_request(body, catalog, known=known)
        except ApiError as exc:
            rejects.add(line, raw, exc.message)
            continue
        batch.append(_Row(line, raw, request))
        if len(batch) >= batch_rows:
            yield batch
            batch = []
    if batch:
        yield batch


def _known(app_services: Services) -> Callable[[str], bool]:
    """Whether WhatsApp already reported this number (for numbers newer than the library)."""

    def known(wa_id: str) -> bool:
        with Session(app_services.engine) as session:
            return find_contact(session, key=wa_id) is not None

    return known


def _record(
    app_services: Services, batch: list[_Row], rejects: _Rejects, report: ImportReport
) -> None:
    with session_scope(app_services.engine) as session:
        outcomes = record_collected(
            session,
            app_services,
            [row.request for row in batch],
            skip_recorded=True,
            returning=False,
        )
    for row, outcome in zip(batch, outcomes, strict=True):
        if outcome.refused:
            rejects.add(row.line, row.raw, outcome.reason or outcome.refused)
        elif outcome.duplicate:
            report.already += 1
        else:
            report.recorded += 1
            queued = outcome.confirmation and outcome.confirmation["status"] == "queued"
            report.confirmations += bool(queued)
