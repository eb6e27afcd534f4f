"""What the bot keeps without acting on: unparseable payloads, other fields, Meta preferences."""

from __future__ import annotations

import hashlib
import json
from datetime import datetime
from typing import Any

from sqlmodel import Session

from storage.models import FailedPayload, OtherEvent, PreferenceEvent
from storage.types import utcnow
from storage.upsert import insert_ignoring_conflict


def digest_of(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def keep_failed_payload(session: Session, *, body: bytes, problem: str) -> bool:
    """Keep a body (or item) that could not be parsed, once; True if it is new."""
    return insert_ignoring_conflict(
        session,
        FailedPayload,
        {"digest": digest_of(body), "problem": problem, "body": body, "received_at": utcnow()},
    )


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
