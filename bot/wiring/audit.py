"""Writing the audit log, for the console and the API alike: who, when, what.

A contact is written only masked (for people reading the log) and as the keyed hash that its
suppression entry would carry (to find every event about one number, even after its erasure).
The number itself never reaches the table.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from sqlmodel import Session

from bot.wiring.logmask import mask_recipient
from bot.wiring.services import Services
from storage.audit import record_event
from storage.db import session_scope
from storage.suppression import suppression_digest

CONSOLE = "console"
API = "api"
# What the log records; the API's calls are "api_call" unless they view, export or erase.
ACTIONS = (
    "sign_in",
    "sign_in_failed",
    "sign_in_refused",
    "sign_out",
    "sessions_ended",
    "contact_viewed",
    "contact_exported",
    "contact_erased",
    "inbox_resolved",
    "refused",
    "audit_viewed",
    "api_call",
)
_SPELLED_NUMBER = re.compile(r"\+?[0-9][0-9 ()\-.]*")


@dataclass(frozen=True, slots=True)
class Subject:
    masked: str
    digest: str


def canonical_key(key: str) -> str:
    """A number in any usual spelling as its digits, as wa_ids are stored; a user id as given."""
    key = key.strip()
    if _SPELLED_NUMBER.fullmatch(key):
        return "".join(ch for ch in key if ch.isdigit())
    return key


def subject_of(key: str | None, *, suppression_key: bytes) -> Subject | None:
    # A key from a URL may hold anything; what no database keeps (NUL, lone surrogates) goes.
    key = "".join(ch for ch in key or "" if ch.isprintable() and not "\ud800" <= ch <= "\udfff")
    if not key.strip():
        return None
    canonical = canonical_key(key)
    return Subject(
        masked=mask_recipient(canonical), digest=suppression_digest(suppression_key, canonical)
    )


def audit(
    db: Session,
    app_services: Services,
    *,
    channel: str,
    actor: str,
    action: str,
    contact_key: str | None = None,
    address: str | None = None,
    detail: dict[str, Any] | None = None,
) -> None:
    """Append one event in the caller's transaction (so it stands or falls with the act)."""
    subject = subject_of(contact_key, suppression_key=app_services.settings.suppression_key)
    record_event(
        db,
        channel=channel,
        actor=actor,
        action=action,
        subject=subject.masked if subject else None,
        subject_digest=subject.digest if subject else None,
        address=address,
        detail=detail,
    )


def audit_now(app_services: Services, **event: Any) -> None:
    """Append one event in a transaction of its own."""
    with session_scope(app_services.engine) as db:
        audit(db, app_services, **event)
