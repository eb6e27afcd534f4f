"""What a body's statuses do to the messages they report on, worked out without a database: the
rows as Meta sent them, which were new, and the steps each message takes. Shared by the portable
path (storage.statuses) and PostgreSQL's own (storage.statuses_pg), so both move alike."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from storage.conversation import STATUS_RANK


@dataclass(frozen=True, slots=True)
class StatusRow:
    """One status as Meta reported it, in the order of the body."""

    wamid: str
    status: str
    meta_timestamp: datetime
    phone_number_id: str | None
    recipient_id: str | None
    recipient_user_id: str | None
    recipient_participant_id: str | None
    error_code: int | None
    error_title: str | None
    raw: dict[str, Any] | None


@dataclass(frozen=True, slots=True)
class Stored:
    """A message as locked before its new statuses apply."""

    message_id: str
    contact_id: int
    status: str
    error_code: int | None
    error_title: str | None


@dataclass(frozen=True, slots=True)
class Moved:
    """A step a new status moved a message forward by, and the error it has after it."""

    message_id: str
    contact_id: int
    wamid: str
    status: str
    error_code: int | None
    error_title: str | None
    occurred_at: datetime


@dataclass(frozen=True, slots=True)
class Applied:
    """What a batch did: which rows were new, and each step a message took, in body order."""

    new: tuple[bool, ...]
    moved: tuple[Moved, ...]


def newness(rows: Sequence[StatusRow], inserted: Collection[tuple[str, str]]) -> list[bool]:
    """Which rows were new, given the (wamid, status) keys inserted: a key twice in one body is
    inserted once, so only its first row is new."""
    left = set(inserted)
    new = []
    for row in rows:
        key = (row.wamid, row.status)
        new.append(key in left)
        left.discard(key)
    return new


def forward_steps(stored: dict[str, Stored], fresh: Sequence[StatusRow]) -> list[Moved]:
    """The steps the statuses take their messages through, as if applied one by one in body
    order: a status moves a message only to a later stage ("read" before "delivered" stays
    "read"), and a step that carries an error sets it. `stored` holds the messages by wamid; a
    status of any other wamid moves nothing."""
    now = dict(stored)
    steps: list[Moved] = []
    for row in fresh:
        message = now.get(row.wamid)
        if message is None:
            continue  # not one of ours, or sent before this database: kept, moves nothing
        if STATUS_RANK.get(row.status, 0) <= STATUS_RANK.get(message.status, 0):
            continue
        error = (row.error_code, row.error_title)
        if error == (None, None):
            error = (message.error_code, message.error_title)
        message = Stored(message.message_id, message.contact_id, row.status, *error)
        now[row.wamid] = message
        steps.append(
            Moved(
                message_id=message.message_id,
                contact_id=message.contact_id,
                wamid=row.wamid,
                status=row.status,
                error_code=message.error_code,
                error_title=message.error_title,
                occurred_at=row.meta_timestamp,
            )
        )
    return steps


def final_values(moved: Sequence[Moved]) -> list[dict[str, Any]]:
    """Each moved message as its last step left it."""
    final = {
        step.message_id: {
            "message_id": step.message_id,
            "new_status": step.status,
            "new_status_at": step.occurred_at,
            "new_error_code": step.error_code,
            "new_error_title": step.error_title,
        }
        for step in moved
    }
    return list(final.values())


def moved_by(row: StatusRow, found: Any) -> Moved | None:
    """The step a forward-only UPDATE's returned (id, contact id, error code, error title) says
    the row took; None when it moved nothing."""
    if found is None or found[0] is None:
        return None
    message_id, contact_id, error_code, error_title = found
    return Moved(
        message_id=message_id,
        contact_id=contact_id,
        wamid=row.wamid,
        status=row.status,
        error_code=error_code,
        error_title=error_title,
        occurred_at=row.meta_timestamp,
    )
