"""Stores every event of a verified webhook body durably, each message once, and acts on it."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from functools import lru_cache, partial
from typing import TYPE_CHECKING

from bot.inbound.apart import KEPT, isolated, item_bytes, keep_apart
from bot.inbound.messages import rounds_of, store_each_apart, store_together
from bot.inbound.statuses import store_statuses
from bot.meta.events import InboundMessage, PreferenceUpdate
from bot.meta.parser import PayloadError, parse_body
from bot.wiring.logmask import mask_number
from bot.wiring.services import Services
from storage.contacts import lock_contact
from storage.db import session_scope, storage_unavailable
from storage.inbox import keep_failed_payload, keep_other_event, keep_preference_event

if TYPE_CHECKING:
    from bot.inbound.responder import Responder

log = logging.getLogger(__name__)


@dataclass(slots=True)
class IngestReport:
    """What a body held, each event counted once: a redelivered one counts as a duplicate."""

    messages: int = 0
    duplicates: int = 0
    statuses: int = 0
    preferences: int = 0
    others: int = 0
    malformed: int = 0

    def as_json(self) -> str:
        """The webhook's answer: compact JSON, keys sorted, one line."""
        return _answer(tuple(getattr(self, name) for name in self.__slots__))


@lru_cache(maxsize=256)
def _answer(counts: tuple[int, ...]) -> str:
    # Written once per set of counts: a campaign's statuses get the same answer every time.
    named = dict(zip(IngestReport.__slots__, counts, strict=True))
    return json.dumps(named, separators=(",", ":"), sort_keys=True) + "\n"


def ingest_body(services: Services, raw: bytes, handler: Responder | None = None) -> IngestReport:
    """Parse and store a whole body; raises only when storage fails (the caller answers 503)."""
    report = IngestReport()
    try:
        body = parse_body(raw)
    except PayloadError as exc:
        log.warning("webhook body could not be parsed, kept for support: %s", exc)
        with session_scope(services.engine) as session:
            keep_failed_payload(session, body=raw, problem=str(exc))
        report.malformed = 1
        return report

    store_messages(services, body.messages, handler, report)
    counts = store_statuses(services, body.statuses)
    report.statuses += counts.stored
    report.duplicates += counts.duplicates
    report.malformed += counts.kept
    if body.others or body.malformed:
        with session_scope(services.engine) as session:
            for other in body.others:
                act = partial(
                    keep_other_event,
                    session,
                    field=other.field,
                    entry_id=other.entry_id,
                    raw=other.raw,
                )
                kept = keep_apart(session, act, raw=other.raw, what=other.path)
                if kept is KEPT:
                    report.malformed += 1
                elif kept:
                    report.others += 1
                else:
                    report.duplicates += 1
            for item in body.malformed:
                keep_failed_payload(session, body=item_bytes(item.raw), problem=item.problem)
                report.malformed += 1
    for preference in body.preferences:
        stored = _preference_apart(services, preference, handler)
        if stored is KEPT:
            report.malformed += 1
        elif stored:
            report.preferences += 1
        else:
            report.duplicates += 1
    return report


def store_messages(
    services: Services,
    messages: tuple[InboundMessage, ...],
    handler: Responder | None,
    report: IngestReport,
) -> None:
    """Store a body's messages and act on each new one, in one transaction.

    One commit for the batch instead of one per message. Contacts are locked in key order, the
    same order in every worker, so two batches naming the same contacts never deadlock. Which
    messages were stored before (Meta redelivers for days) is asked of the database in the
    statement that reads their senders, so a new message costs no extra round trip for it.
    """
    if not messages:
        return
    rounds = rounds_of(list(messages))
    ordered = [message for round_ in rounds for message in round_]
    try:
        outcomes = store_together(services, rounds, handler)
    except Exception as exc:
        if storage_unavailable(exc):
            raise
        log.warning("messages refused together (%s); storing each apart", type(exc).__name__)
        outcomes = store_each_apart(services, ordered, handler)
    new = [m for m, outcome in zip(ordered, outcomes, strict=True) if outcome is True]
    kept = sum(1 for outcome in outcomes if outcome is KEPT)
    for message in new:
        log.info("stored message %s from %s", message.wamid, mask_number(message.contact_key))
    report.messages += len(new)
    report.malformed += kept
    report.duplicates += len(messages) - len(new) - kept


def store_preference(
    services: Services, preference: PreferenceUpdate, handler: Responder | None = None
) -> bool:
    """Keep Meta's preference update once and act on it (marketing stop withdraws, C13)."""
    key = preference.wa_id or preference.user_id
    with session_scope(services.engine) as session:
        if not key:
            keep_failed_payload(
                session,
                body=item_bytes(preference.raw),
                problem="user_preferences item names no wa_id or user_id",
            )
            return False
        new = keep_preference_event(
            session,
            contact_key=key,
            category=preference.category,
            value=preference.value,
            detail=preference.detail,
            occurred_at=preference.timestamp,
            raw=dict(preference.raw),
        )
        if new and handler is not None and preference.category == "marketing_messages":
            contact = lock_contact(
                session,
                wa_id=preference.wa_id,
                user_id=preference.user_id,
                at=preference.timestamp,
                suppression_key=services.settings.suppression_key,
            )
            handler.on_preference(
                session,
                contact,
                value=preference.value,
                occurred_at=preference.timestamp,
                evidence={
                    "event": "user_preferences",
                    "category": preference.category,
                    "value": preference.value,
                    "detail": preference.detail or "",
                    "timestamp": preference.timestamp.isoformat(),
                },
                phone_number_id=preference.phone_number_id,
            )
        return new


def _preference_apart(
    services: Services, preference: PreferenceUpdate, handler: Responder | None
) -> object:
    """store_preference (a transaction of its own) isolated as keep_apart isolates an item."""

    def keep(problem: str) -> None:
        with session_scope(services.engine) as session:
            keep_failed_payload(session, body=item_bytes(preference.raw), problem=problem)

    act = partial(store_preference, services, preference, handler)
    return isolated(act, keep, "user_preferences item")
