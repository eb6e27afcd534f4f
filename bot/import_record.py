"""One checked batch of a consent import recorded in one transaction: set-based on PostgreSQL
(storage.consent_import), row by row through bot.intake elsewhere and for a batch that names a
business-scoped user id (which the API's own path resolves). The effects are the same."""

from __future__ import annotations

from dataclasses import dataclass

from bot.graph.payloads import is_user_id
from bot.import_check import Checked, RowCheck
from bot.intake import SUPPRESSED_MESSAGE, queue_confirmation, record_collected
from bot.wiring.services import Services
from storage import consent_import
from storage.db import is_postgres, session_scope


@dataclass(slots=True)
class BatchOutcome:
    refused: list[tuple[int, str]]  # (line, why), in line order
    recorded: int = 0
    already: int = 0  # recorded by an earlier run, or earlier in the file
    confirmations: int = 0  # double opt-in templates queued


def stage(
    app_services: Services, rows: list[Checked], *, row_by_row: bool = False
) -> consent_import.Staged | None:
    """The batch as the set-based way takes it, or None when it goes row by row. Built while the
    batch before is recorded.

    row_by_row: bot.intake's way whatever the database, the reference the set-based way is held
    to."""
    if row_by_row or not rows or not is_postgres(app_services.engine):
        return None
    if any(is_user_id(row.wa_id) for row in rows):
        return None
    staged = consent_import.Staged()
    for row in rows:
        staged.add(row.line, row.wa_id, row.categories, row.collected_at, row.text, row.version)
    staged.seal()
    return staged


def record_batch(
    app_services: Services,
    rows: list[Checked],
    check: RowCheck,
    staged: consent_import.Staged | None,
) -> BatchOutcome:
    """`rows` are not needed once staged."""
    if staged is not None:
        return _set_based(app_services, check, staged)
    if not rows:
        return BatchOutcome([])
    return _row_by_row(app_services, rows, check)


def _set_based(
    app_services: Services, check: RowCheck, staged: consent_import.Staged
) -> BatchOutcome:
    catalog = app_services.catalog
    held = catalog.marketing_ids if catalog.double_opt_in.enabled else ()
    with session_scope(app_services.engine) as session:
        applied = consent_import.apply(
            session,
            staged,
            source=check.source.value,
            file_name=check.file_name,
            suppression_key=app_services.settings.suppression_key,
            held=held,
        )
        queued = 0
        for _line, contact_id, wa_id, categories in applied.pending:
            answer = queue_confirmation(session, app_services, contact_id, wa_id, categories)
            queued += answer["status"] == "queued"
    return BatchOutcome(
        [(line, SUPPRESSED_MESSAGE) for line in applied.refused],
        recorded=applied.recorded,
        already=applied.duplicates,
        confirmations=queued,
    )


def _row_by_row(app_services: Services, rows: list[Checked], check: RowCheck) -> BatchOutcome:
    with session_scope(app_services.engine) as session:
        outcomes = record_collected(
            session,
            app_services,
            [check.request(row) for row in rows],
            skip_recorded=True,
            returning=False,
        )
    result = BatchOutcome([])
    for row, outcome in zip(rows, outcomes, strict=True):
        if outcome.refused:
            result.refused.append((row.line, outcome.reason or outcome.refused))
        elif outcome.duplicate:
            result.already += 1
        else:
            result.recorded += 1
            queued = outcome.confirmation and outcome.confirmation["status"] == "queued"
            result.confirmations += bool(queued)
    return result
