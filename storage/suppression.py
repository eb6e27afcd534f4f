"""Suppression by keyed hash: an erased number is never stored in clear, yet still recognised."""

from __future__ import annotations

import hashlib
import hmac

from sqlmodel import Session

from storage.models import Suppression
from storage.types import utcnow
from storage.upsert import insert_ignoring_conflict


def suppression_digest(key: bytes, wa_id: str) -> str:
    return hmac.new(key, b"suppression:" + wa_id.encode(), hashlib.sha256).hexdigest()


def is_suppressed(session: Session, *, key: bytes, wa_id: str | None) -> bool:
    if not wa_id:
        return False
    return session.get(Suppression, suppression_digest(key, wa_id)) is not None


def suppress(session: Session, *, key: bytes, wa_id: str, reason: str) -> None:
    insert_ignoring_conflict(
        session,
        Suppression,
        {"digest": suppression_digest(key, wa_id), "reason": reason, "created_at": utcnow()},
    )


def lift(session: Session, *, key: bytes, wa_id: str) -> bool:
    row = session.get(Suppression, suppression_digest(key, wa_id))
    if row is None:
        return False
    session.delete(row)
    return True
