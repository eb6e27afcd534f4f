"""What the bot keeps without acting on: unparseable payloads, other fields, Meta preferences."""

from __future__ import annotations

import hashlib
import json
import re
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from storage.models import FailedPayload, OtherEvent, PreferenceEvent
from storage.types import utcnow
from storage.upsert import insert_ignoring_conflict


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


# A problem is a line or two for support; the body beside it holds everything.
PROBLEM_MAX = 2000
_UNSTORABLE_TEXT = re.compile("[\x00\ud800-\udfff]")


def keep_failed_payload(session: Session, *, body: bytes, problem: str) -> bool:
    """Keep a body (or item) that could not be parsed, once; True if it is new."""
    return insert_ignoring_conflict(
        session,
        FailedPayload,
        {
            "digest": digest_of(body),
            "problem": storable_problem(problem),
            "body": body,
            "received_at": utcnow(),
        },
    )


def storable_problem(problem: str) -> str:
    """The problem as a text column keeps it: a NUL or lone surrogate it quotes is escaped."""
    problem = _UNSTORABLE_TEXT.sub(lambda m: m.group().encode("unicode_escape").decode(), problem)
    if len(problem) > PROBLEM_MAX:
        problem = f"{problem[:PROBLEM_MAX]}… ({len(problem)} characters)"
    return problem


def keep_other_event(
    session: Session, *, field: str, entry_id: str | None, raw: dict[str, Any]
) -> bool:
    canonical = json.dumps([field, entry_id, raw], sort_keys=True, ensure_ascii=False)
    return insert_ignoring_conflict(
        session,
        OtherEvent,
        {
            "digest": digest_of(canonical.encode()),
            "field": field,
            "entry_id": entry_id,
            "raw": raw,
            "received_at": utcnow(),
        },
    )


def keep_preference_event(
    session: Session,
    *,
    contact_key: str,
    category: str,
    value: str,
    detail: str | None,
    occurred_at: datetime,
    raw: dict[str, Any] | None,
) -> bool:
    """True when this preference update is new (not a redelivery)."""
    return insert_ignoring_conflict(
        session,
        PreferenceEvent,
        {
            "contact_key": contact_key,
            "category": category,
            "value": value,
            "detail": detail,
            "occurred_at": occurred_at,
            "raw": raw,
            "received_at": utcnow(),
        },
    )


INBOX_PAGE = 50


def failed_payloads(
    session: Session, *, resolved: bool = False, limit: int = INBOX_PAGE
) -> list[FailedPayload]:
    """The support inbox: unparsable bodies not yet resolved (or those resolved), newest first."""
    statement = (
        select(FailedPayload)
        .where(_resolved_is(resolved))
        .order_by(col(FailedPayload.received_at).desc(), col(FailedPayload.id).desc())
        .limit(limit)
    )
    return list(session.exec(statement))


def count_failed_payloads(session: Session, *, resolved: bool = False) -> int:
    return session.exec(
        select(func.count()).select_from(FailedPayload).where(_resolved_is(resolved))
    ).one()


def _resolved_is(resolved: bool) -> ColumnElement[bool]:
    resolved_at = col(FailedPayload.resolved_at)
    return resolved_at.is_not(None) if resolved else resolved_at.is_(None)


def resolve_failed_payload(
    session: Session, payload_id: int, *, now: datetime | None = None
) -> bool:
    """Mark one unparsable body as dealt with; False if unknown or resolved already."""
    payload = session.get(FailedPayload, payload_id)
    if payload is None or payload.resolved_at is not None:
        return False
    payload.resolved_at = now or utcnow()
    session.add(payload)
    return True
