"""Everything held on one contact (GDPR Art. 15/20), found the same way the erasure finds it.

Besides the contact's own rows, Meta's raw events can name the number (or an earlier number or
user id of the person, which the history of identity changes keeps): delivery statuses of its
messages, user_preferences updates, changes the bot does not act on, bodies it could not parse,
and stored API answers. They are matched on the quoted id ("16505551234"), so a longer number
that merely contains this one is never taken for it.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Text, cast, or_
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, col, select

from storage.identity import history_of, known_identifiers, strong_identifiers
from storage.models import (
    Consent,
    ConsentEvent,
    Contact,
    DialogueRow,
    FailedPayload,
    IdempotencyRecord,
    IdentityChange,
    Message,
    OtherEvent,
    PreferenceEvent,
    StatusEvent,
    WebOptinRequest,
)

SCAN_BATCH = 500


def keys_of(contact: Contact) -> tuple[str, ...]:
    """The identifiers Meta and the API know this person by now."""
    return strong_identifiers(contact)


def quoted(key: str) -> str:
    return json.dumps(key)


def json_names_any(column: Any, keys: tuple[str, ...]) -> ColumnElement[bool]:
    """A JSON column whose text holds one of keys as a JSON string."""
    text = cast(column, Text)
    return or_(*(text.contains(quoted(k), autoescape=True) for k in keys))


def status_events_where(contact: Contact, keys: tuple[str, ...] = ()) -> ColumnElement[bool]:
    wamids = select(Message.wamid).where(
        Message.contact_id == contact.id, col(Message.wamid).is_not(None)
    )
    return or_(
        col(StatusEvent.wamid).in_(wamids),
        col(StatusEvent.recipient_id).in_(keys or keys_of(contact)),
    )


def failed_payload_ids(session: Session, keys: tuple[str, ...]) -> list[int]:
    """Ids of unparsed bodies naming one of keys; scanned in Python, as LIKE on bytes differs
    between SQLite and PostgreSQL (and this table holds only what could not be parsed)."""
    needles = [quoted(k).encode() for k in keys]
    found = []
    last_id = 0
    while True:
        batch = session.exec(
            select(FailedPayload.id, FailedPayload.body)
            .where(col(FailedPayload.id) > last_id)
            .order_by(col(FailedPayload.id))
            .limit(SCAN_BATCH)
        ).all()
        if not batch:
            return found
        for payload_id, body in batch:
            if any(needle in bytes(body) for needle in needles):
                found.append(payload_id)
        last_id = batch[-1][0]


@dataclass(frozen=True, slots=True, kw_only=True)
class HeldData:
    contact: Contact
    consents: list[Consent]
    consent_events: list[ConsentEvent]
    messages: list[Message]
    status_events: list[StatusEvent]
    preference_events: list[PreferenceEvent]
    dialogue: DialogueRow | None
    other_events: list[OtherEvent]
    failed_payloads: list[FailedPayload]
    identity_changes: list[IdentityChange]
    web_optin_requests: list[WebOptinRequest]


def held_on(session: Session, *, contact: Contact) -> HeldData:
    # Earlier numbers and user ids too: what named the person then is theirs (Art. 15).
    keys = known_identifiers(session, contact)
    return HeldData(
        contact=contact,
        consents=list(
            session.exec(
                select(Consent)
                .where(Consent.contact_id == contact.id)
                .order_by(col(Consent.category))
            )
        ),
        consent_events=list(
            session.exec(
                select(ConsentEvent)
                .where(ConsentEvent.contact_id == contact.id)
                .order_by(col(ConsentEvent.occurred_at), col(ConsentEvent.id))
            )
        ),
        messages=list(
            session.exec(
                select(Message)
                .where(Message.contact_id == contact.id)
                .order_by(col(Message.meta_timestamp), col(Message.created_at))
            )
        ),
        status_events=list(
            session.exec(
                select(StatusEvent)
                .where(status_events_where(contact, keys))
                .order_by(col(StatusEvent.meta_timestamp), col(StatusEvent.id))
            )
        ),
        preference_events=list(
            session.exec(
                select(PreferenceEvent)
                .where(col(PreferenceEvent.contact_key).in_(keys))
                .order_by(col(PreferenceEvent.occurred_at), col(PreferenceEvent.id))
            )
        ),
        dialogue=session.get(DialogueRow, contact.id),
        other_events=list(
            session.exec(
                select(OtherEvent)
                .where(json_names_any(OtherEvent.raw, keys))
                .order_by(col(OtherEvent.id))
            )
        ),
        failed_payloads=list(_by_ids(session, failed_payload_ids(session, keys))),
        identity_changes=history_of(session, contact_id=contact.id),
        web_optin_requests=list(
            session.exec(
                select(WebOptinRequest)
                .where(WebOptinRequest.contact_id == contact.id)
                .order_by(col(WebOptinRequest.id))
            )
        ),
    )


def _by_ids(session: Session, ids: list[int]) -> Iterator[FailedPayload]:
    for start in range(0, len(ids), SCAN_BATCH):
        chunk = ids[start : start + SCAN_BATCH]
        yield from session.exec(
            select(FailedPayload)
            .where(col(FailedPayload.id).in_(chunk))
            .order_by(col(FailedPayload.id))
        )


def idempotency_records_where(keys: tuple[str, ...]) -> ColumnElement[bool]:
    """Stored API answers that repeat the number (POST /consents answers name the wa_id)."""
    return json_names_any(IdempotencyRecord.response, keys)
