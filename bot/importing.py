"""`flask --app wsgi consent import FILE.csv --source paper|web|sms|email|ivr`: consent collected
on paper forms, in IVR logs and elsewhere, recorded as POST /api/v1/consents would.

The file is read as a stream, in batches of one transaction each, so memory stays flat however
long it is. Each row goes through the API's own checks (bot.import_check); a row that fails goes
to FILE.rejects.csv with the reason. A row already in the ledger (same number, categories,
collected_at, text and source) is not recorded again, so an import that stopped half-way, or ran
twice, is simply run again.

On PostgreSQL a batch is recorded set-based (storage.consent_import) while the next one is read;
elsewhere, and for a batch naming a business-scoped user id, row by row (bot.intake), with the
same effects.
"""

from __future__ import annotations

import csv
import io
import time
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO

from sqlmodel import Session

from bot.api.errors import ApiError
from bot.import_check import Checked, RowCheck
from bot.import_record import BatchOutcome, record_batch, stage
from bot.wiring.services import Services
from flows.policy import RECORDABLE_SOURCES, ConsentSource
from storage.consent_import import Staged
from storage.contacts import find_contact
from storage.db import is_postgres

COLUMNS = ("wa_id", "categories", "collected_at", "text")
# Consent collected elsewhere; an opt-in on WhatsApp is recorded by the bot itself.
IMPORT_SOURCES = tuple(s.value for s in RECORDABLE_SOURCES if s is not ConsentSource.WHATSAPP)
BATCH_ROWS = 2000  # row by row: a transaction the webhook's writers barely wait for
SET_BATCH_ROWS = 10_000  # set-based (PostgreSQL): fewer, larger statements, in 150 MB


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


def default_batch_rows(app_services: Services) -> int:
    return SET_BATCH_ROWS if is_postgres(app_services.engine) else BATCH_ROWS


def import_file(
    app_services: Services,
    path: Path,
    source: str,
    *,
    batch_rows: int | None = None,
    progress: Callable[[int, ImportReport], None] | None = None,
    row_by_row: bool = False,
) -> ImportReport:
    """Import the file; `progress(bytes_read, report)` is called after every batch.
    row_by_row: every batch through bot.intake, even on PostgreSQL (see bot.import_record)."""
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
        check = RowCheck(
            app_services.catalog, ConsentSource(source), path.name, _known(app_services)
        )
        reading = _Reading(
            reader, binary, header, check, batch_rows or default_batch_rows(app_services)
        )

        def finish(batch: _Batch, outcome: BatchOutcome) -> None:
            batch.reject_into(rejects, outcome.refused)
            report.recorded += outcome.recorded
            report.already += outcome.already
            report.confirmations += outcome.confirmations
            report.rows, report.rejected = batch.rows_read, rejects.count
            report.seconds = time.monotonic() - started
            if progress is not None:
                progress(batch.position, report)

        pipeline = _Pipeline(app_services, check, finish, row_by_row=row_by_row)
        try:
            try:
                for batch in reading.batches():
                    pipeline.push(batch)
            finally:
                pipeline.close()
        except (UnicodeDecodeError, csv.Error) as exc:
            # The batch being read is dropped; the rows rejected in it are still reported.
            for line, raw, reason in reading.rejected:
                rejects.add(line, raw, reason)
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


@dataclass(slots=True)
class _Batch:
    rows: list[Checked]  # emptied once staged for the set-based way
    lines: list[int]
    raw: list[list[str]]  # each row as read, for the rejects file
    rejected: list[tuple[int, list[str], str]]  # rows that failed the checks, as read
    rows_read: int  # lines of the file read so far, the header aside
    position: int  # bytes read so far
    staged: Staged | None = None  # for the set-based way

    def reject_into(self, rejects: _Rejects, refused: list[tuple[int, str]]) -> None:
        """The rows that failed the checks, then those the recording refused."""
        for line, raw, reason in self.rejected:
            rejects.add(line, raw, reason)
        if refused:
            by_line = dict(zip(self.lines, self.raw, strict=True))
            for line, reason in refused:
                rejects.add(line, by_line[line], reason)


@dataclass(slots=True)
class _Reading:
    """The file's rows checked, in batches; a row that fails is kept with the batch."""

    reader: csv.Reader  # type: ignore[name-defined]
    binary: IO[bytes]
    header: list[str]
    check: RowCheck
    batch_rows: int
    rejected: list[tuple[int, list[str], str]] = field(default_factory=list)

    def batches(self) -> Iterator[_Batch]:
        reader, width, check = self.reader, len(self.header), self.check.check
        wa_id, categories, collected_at, text = (self.header.index(c) for c in COLUMNS)
        rows: list[Checked] = []
        lines: list[int] = []
        raws: list[list[str]] = []
        for raw in reader:
            line = reader.line_num
            if len(raw) != width:
                if any(cell.strip() for cell in raw):  # not a blank line
                    self.rejected.append((line, raw, f"expected {width} columns, found {len(raw)}"))
                continue
            try:
                row = check(line, raw[wa_id], raw[categories], raw[collected_at], raw[text])
            except ApiError as exc:
                self.rejected.append((line, raw, exc.message))
                continue
            rows.append(row)
            lines.append(line)
            raws.append(raw)
            if len(rows) >= self.batch_rows:
                yield self._batch(rows, lines, raws)
                rows, lines, raws = [], [], []
        if rows or self.rejected:
            yield self._batch(rows, lines, raws)

    def _batch(self, rows: list[Checked], lines: list[int], raws: list[list[str]]) -> _Batch:
        rejected, self.rejected = self.rejected, []
        position = self.binary.tell()
        return _Batch(rows, lines, raws, rejected, self.reader.line_num - 1, position)


class _Pipeline:
    """Batches recorded in file order. On PostgreSQL one is recorded by a worker thread while
    the next is read and checked: the database and Python work at the same time."""

    def __init__(
        self,
        app_services: Services,
        check: RowCheck,
        finish: Callable[[_Batch, BatchOutcome], None],
        *,
        row_by_row: bool,
    ) -> None:
        self.app_services, self.check, self.finish = app_services, check, finish
        self.row_by_row = row_by_row
        concurrent = is_postgres(app_services.engine) and not row_by_row
        self.worker = ThreadPoolExecutor(1, "consent-import") if concurrent else None
        self.in_flight: tuple[_Batch, Future[BatchOutcome]] | None = None

    def push(self, batch: _Batch) -> None:
        batch.staged = stage(self.app_services, batch.rows, row_by_row=self.row_by_row)
        if batch.staged is not None:
            batch.rows = []  # memory stays flat: what is staged is all the recording needs
        if self.worker is None:
            self.finish(batch, self._record(batch))
            return
        self.drain()
        self.in_flight = (batch, self.worker.submit(self._record, batch))

    def drain(self) -> None:
        """Wait for the batch being recorded, if any, and report it."""
        if self.in_flight is not None:
            batch, future = self.in_flight
            self.in_flight = None
            self.finish(batch, future.result())

    def close(self) -> None:
        try:
            self.drain()
        finally:
            if self.worker is not None:
                self.worker.shutdown()

    def _record(self, batch: _Batch) -> BatchOutcome:
        return record_batch(self.app_services, batch.rows, self.check, batch.staged)


def _known(app_services: Services) -> Callable[[str], bool]:
    """Whether WhatsApp already reported this number (for numbers newer than the library)."""

    def known(wa_id: str) -> bool:
        with Session(app_services.engine) as session:
            return find_contact(session, key=wa_id) is not None

    return known
