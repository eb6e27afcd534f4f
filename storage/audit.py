"""The audit log: appended to by the console and the API, read by admins, never changed.

Callers pass the contact already masked and hashed; nothing here ever sees a number in clear.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlmodel import Session, col, select

from storage.models import AuditEvent
from storage.types import utcnow

PER_PAGE = 100


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditFilter:
    action: str | None = None
    actor: str | None = None
    subject_digest: str | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class AuditPage:
    events: list[AuditEvent]
    total: int
    page: int
    per_page: int

    @property
    def pages(self) -> int:
        return max(1, -(-self.total // self.per_page))


def record_event(
    session: Session,
    *,
    channel: str,
    actor: str,
    action: str,
    subject: str | None = None,
    subject_digest: str | None = None,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> AuditEvent:
    """Append one event in the caller's transaction."""
    event = AuditEvent(
        occurred_at=now or utcnow(),
        channel=channel,
        actor=actor[:96],
        action=action,
        subject=(subject or "")[:64] or None,
        subject_digest=subject_digest,
        address=(address or "")[:64] or None,
        detail=detail,
    )
    session.add(event)
    return event


def audit_page(
    session: Session, *, where: AuditFilter, page: int = 1, per_page: int = PER_PAGE
) -> AuditPage:
    """Newest first."""
    page = max(1, page)
    conditions = []
    if where.action:
        conditions.append(col(AuditEvent.action) == where.action)
    if where.actor:
        conditions.append(col(AuditEvent.actor) == where.actor)
    if where.subject_digest:
        conditions.append(col(AuditEvent.subject_digest) == where.subject_digest)
    events = session.exec(
        select(AuditEvent)
        .where(*conditions)
        .order_by(col(AuditEvent.occurred_at).desc(), col(AuditEvent.id).desc())
        .limit(per_page)
        .offset((page - 1) * per_page)
    ).all()
    total = session.exec(select(func.count()).select_from(AuditEvent).where(*conditions)).one()
    return AuditPage(events=list(events), total=total, page=page, per_page=per_page)
