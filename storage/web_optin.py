"""Choices made on the hosted opt-in page (C28), waiting for the person's tap on WhatsApp.

A request holds exactly what the page showed and what was ticked; nothing is in the ledger
until the doi:yes tap, which the dialogue turns into grants with source web. A number gets at
most one confirmation template a day however often the page is submitted for it; a newer
submission replaces an older one still pending, so the tap confirms the latest choice.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import bindparam
from sqlmodel import Session, col, select, update

from flows.model import RequestedOptIn
from storage.models import WebOptinRequest
from storage.orm_rows import rows_of
from storage.types import utcnow

PENDING = "pending"
CONFIRMED = "confirmed"
DECLINED = "declined"
REPLACED = "replaced"
# A tap later than this confirms nothing: the choice is too old to be the person's current one.
LIFETIME = timedelta(days=7)
TEMPLATE_INTERVAL = timedelta(days=1)  # at most one confirmation template per number per day


@dataclass(frozen=True, slots=True)
class Submitted:
    request: WebOptinRequest
    send_template: bool  # False: one went to this number less than a day ago


def submit(
    session: Session,
    *,
    contact_id: int,
    categories: list[str],
    language: str,
    text: str,
    text_version: str,
    evidence: dict[str, Any],
    now: datetime | None = None,
) -> Submitted:
    """Record a choice as pending, in the caller's transaction (the contact locked)."""
    now = now or utcnow()
    session.execute(
        update(WebOptinRequest)
        .where(col(WebOptinRequest.contact_id) == contact_id, WebOptinRequest.state == PENDING)
        .values(state=REPLACED, settled_at=now)
    )
    last_template = session.exec(
        select(WebOptinRequest.template_queued_at)
        .where(
            col(WebOptinRequest.contact_id) == contact_id,
            col(WebOptinRequest.template_queued_at) > now - TEMPLATE_INTERVAL,
        )
        .limit(1)
    ).first()
    send_template = last_template is None
    request = WebOptinRequest(
        contact_id=contact_id,
        categories=categories,
        language=language,
        text=text,
        text_version=text_version,
        evidence=evidence,
        submitted_at=now,
        template_queued_at=now if send_template else None,
        state=PENDING,
    )
    session.add(request)
    session.flush()
    return Submitted(request, send_template)


def live_since(contact_ids: Collection[int]) -> dict[str, Any]:
    """LIVE_REQUESTS' parameters: the requests a doi:yes tap from these contacts would grant now."""
    return {"contact_ids": list(contact_ids), "since": utcnow() - LIFETIME}


def newest_by_contact(requests: Iterable[WebOptinRequest]) -> dict[int, WebOptinRequest]:
    """Each contact's live request, from the rows of LIVE_REQUESTS (newest first), however they
    were read."""
    live: dict[int, WebOptinRequest] = {}
    for request in requests:
        live.setdefault(request.contact_id, request)  # the newest
    return live


# Every column of the contacts' pending requests younger than LIFETIME, newest first.
LIVE_REQUESTS = (
    rows_of(WebOptinRequest)
    .where(
        col(WebOptinRequest.contact_id).in_(bindparam("contact_ids", expanding=True)),
        WebOptinRequest.state == PENDING,
        col(WebOptinRequest.submitted_at) > bindparam("since"),
    )
    .order_by(col(WebOptinRequest.id).desc())
)


def as_requested(request: WebOptinRequest | None) -> RequestedOptIn | None:
    """The flow's value for a pending request."""
    if request is None:
        return None
    return RequestedOptIn(
        categories=tuple(request.categories),
        text=request.text,
        evidence={
            **{k: str(v) for k, v in request.evidence.items()},
            "submitted_at": request.submitted_at.isoformat(),
            "web_request": str(request.id),
        },
    )


def settle(
    session: Session, *, contact_id: int, confirmed: bool, now: datetime | None = None
) -> None:
    """The person answered the template: the pending choice is confirmed or declined."""
    now = now or utcnow()
    session.execute(
        update(WebOptinRequest)
        .where(col(WebOptinRequest.contact_id) == contact_id, WebOptinRequest.state == PENDING)
        .values(state=CONFIRMED if confirmed else DECLINED, settled_at=now)
    )
