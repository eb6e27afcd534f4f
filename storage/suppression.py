"""Suppression by keyed hash: an erased number is never stored in clear, yet still recognised."""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable, Mapping
from datetime import datetime

from sqlmodel import Session, col, func, select

from storage.bulk import any_of
from storage.identity import strong_identifiers
from storage.models import Contact, ErasureRecord, Suppression
from storage.types import utcnow
from storage.upsert import insert_ignoring_conflict

ERASURE_REASON = "erasure"


def suppression_digest(key: bytes, wa_id: str) -> str:
    return hmac.new(key, b"suppression:" + wa_id.encode(), hashlib.sha256).hexdigest()


def suppression_digester(key: bytes) -> Callable[[str], str]:
    """suppression_digest with this key, for many numbers: the keyed state is built once."""
    keyed = hmac.new(key, b"suppression:", hashlib.sha256)

    def digest(wa_id: str) -> str:
        state = keyed.copy()
        state.update(wa_id.encode())
        return state.hexdigest()

    return digest


def is_suppressed(session: Session, *, key: bytes, wa_id: str | None) -> bool:
    if not wa_id:
        return False
    return session.get(Suppression, suppression_digest(key, wa_id)) is not None


def suppressed_any(session: Session, *, key: bytes, identifiers: Iterable[str | None]) -> bool:
    """Whether any number or user id of one person is suppressed."""
    return _first_suppression(session, key=key, identifiers=identifiers) is not None


def suppress(
    session: Session, *, key: bytes, wa_id: str, reason: str, since: datetime | None = None
) -> None:
    insert_ignoring_conflict(
        session,
        Suppression,
        {
            "digest": suppression_digest(key, wa_id),
            "reason": reason,
            "created_at": since or utcnow(),
        },
    )


def lift(session: Session, *, key: bytes, wa_id: str) -> bool:
    row = session.get(Suppression, suppression_digest(key, wa_id))
    if row is None:
        return False
    session.delete(row)
    return True


def carry_suppression(
    session: Session,
    *,
    key: bytes,
    before: Iterable[str | None],
    after: Iterable[str | None],
) -> bool:
    """Suppression follows the person: when one of the identifiers they had is suppressed, so is
    every one they have now. Whether it was.

    The new rows keep the original time: a message written before the erasure is still told
    from one written after it (C25), whichever identifier it names.
    """
    found = _first_suppression(session, key=key, identifiers=before)
    if found is None:
        return False
    for identifier in after:
        if identifier:
            suppress(
                session, key=key, wa_id=identifier, reason=found.reason, since=found.created_at
            )
    return True


def _first_suppression(
    session: Session, *, key: bytes, identifiers: Iterable[str | None]
) -> Suppression | None:
    digests = [suppression_digest(key, i) for i in identifiers if i]
    if not digests:
        return None
    return session.exec(
        select(Suppression)
        .where(col(Suppression.digest).in_(digests))
        .order_by(col(Suppression.created_at))
    ).first()


def last_erased_at(
    session: Session, *, key: bytes, identifiers: Iterable[str | None]
) -> datetime | None:
    """When a person known by any of identifiers was last erased, if ever.

    The erasure record outlives the suppression (a new opt-in lifts that), so a message from
    before an erasure is recognised even after the person came back (C25). It names the
    person's first identifier only; the suppression rows name every one.
    """
    digests = [suppression_digest(key, i) for i in identifiers if i]
    if not digests:
        return None
    # Both in one round trip: this runs for every inbound message.
    recorded = (
        select(func.max(ErasureRecord.erased_at))
        .where(col(ErasureRecord.digest).in_(digests))
        .scalar_subquery()
    )
    suppressed = (
        select(func.max(Suppression.created_at))
        .where(col(Suppression.digest).in_(digests), Suppression.reason == ERASURE_REASON)
        .scalar_subquery()
    )
    times = session.execute(select(recorded, suppressed)).one()
    return max((t for t in times if t is not None), default=None)


def person_is_suppressed(session: Session, *, key: bytes, contact: Contact) -> bool:
    """Whether any identifier this person has had is suppressed (a number, a user id)."""
    return suppressed_any(session, key=key, identifiers=strong_identifiers(contact))


def suppressed_among(
    session: Session, *, key: bytes, people: Mapping[str, Iterable[str | None]]
) -> set[str]:
    """Which of these people (name → their identifiers) are suppressed by any identifier, in
    one query: suppressed_any for a batch."""
    digests: dict[str, set[str]] = {}
    for name, identifiers in people.items():
        for identifier in identifiers:
            if identifier:
                digests.setdefault(suppression_digest(key, identifier), set()).add(name)
    if not digests:
        return set()
    found = session.exec(
        select(Suppression.digest).where(any_of(session, Suppression.digest, list(digests)))
    )
    return {name for digest in found for name in digests[digest]}
