"""Erasure (GDPR Art. 17, C18): the contact's personal data goes; a keyed hash stays behind.

Removed, in one transaction with the contact row-locked: the contact, its conversation log and
outbox rows, its consent ledger and current state, its dialogue, the history of its identifiers,
Meta's delivery statuses and preference updates about it, and stored raw events or API answers
that name it by any number or user id it had. What remains is a Suppression row per identifier
(nothing is sent to it, old consents cannot be re-imported) and an ErasureRecord saying when and
by which API token, all holding only keyed hashes (C18).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from sqlalchemy import delete
from sqlalchemy.sql.elements import ColumnElement
from sqlmodel import Session, SQLModel, col, select

from storage import consent_webhooks
from storage.contacts import lock_contact_by_id
from storage.export import (
    failed_payload_ids,
    idempotency_records_where,
    json_names_any,
    status_events_where,
)
from storage.identity import known_identifiers
from storage.models import (
    Consent,
    ConsentEvent,
    Contact,
    DialogueRow,
    ErasureRecord,
    FailedPayload,
    IdempotencyRecord,
    IdentityChange,
    Message,
    OtherEvent,
    OutboxItem,
    PreferenceEvent,
    StatusEvent,
    WebOptinRequest,
)
from storage.suppression import ERASURE_REASON, suppress, suppression_digest
from storage.types import utcnow


@dataclass(frozen=True, slots=True)
class Erasure:
    digest: str
    removed: dict[str, int]


def erase_contact(
    session: Session,
    *,
    contact_id: int,
    key: bytes,
    token_fingerprint: str,
    source: str = "api",  # "console" when staff erase; the webhook says which
) -> Erasure | None:
    """Erase one contact in the caller's transaction; None if it is already gone.

    The business's webhook hears of it (contact.erased, naming the number one last time) in
    this same transaction, after the contact's earlier changes, so its systems erase too.
    """
    contact = lock_contact_by_id(session, contact_id)
    if contact is None:
        return None
    keys = known_identifiers(session, contact)  # earlier numbers and user ids too
    erased_at = utcnow()
    consent_webhooks.queue(
        session,
        [
            consent_webhooks.Change(
                contact_id=contact_id,
                type=consent_webhooks.ERASED,
                occurred_at=erased_at,
                category=None,
                source=source,
            )
        ],
    )
    own_messages = select(Message.id).where(Message.contact_id == contact.id)
    removed: dict[str, int] = {}

    def remove(name: str, model: type[SQLModel], where: ColumnElement[bool]) -> None:
        statement = delete(model).where(where).execution_options(synchronize_session=False)
        result: Any = session.execute(statement)
        removed[name] = result.rowcount or 0

    # Children first: on SQLite, cascades run only with foreign keys on; be explicit everywhere.
    own_wamids = select(Message.wamid).where(
        Message.contact_id == contact.id, col(Message.wamid).is_not(None)
    )
    remove("outbox", OutboxItem, col(OutboxItem.message_id).in_(own_messages))
    # Read receipts are not in the conversation log; they name the inbound message's wamid.
    remove(
        "read_receipts",
        OutboxItem,
        (col(OutboxItem.kind) == "read_receipt")
        & OutboxItem.payload["message_id"].as_string().in_(own_wamids),
    )
    remove("status_events", StatusEvent, status_events_where(contact, keys))
    remove("messages", Message, col(Message.contact_id) == contact.id)
    remove("consent_events", ConsentEvent, col(ConsentEvent.contact_id) == contact.id)
    remove("consents", Consent, col(Consent.contact_id) == contact.id)
    remove("dialogue", DialogueRow, col(DialogueRow.contact_id) == contact.id)
    remove("web_optin_requests", WebOptinRequest, col(WebOptinRequest.contact_id) == contact.id)
    remove("identity_changes", IdentityChange, col(IdentityChange.contact_id) == contact.id)
    remove("preference_events", PreferenceEvent, col(PreferenceEvent.contact_key).in_(keys))
    remove("other_events", OtherEvent, json_names_any(OtherEvent.raw, keys))
    remove(
        "failed_payloads",
        FailedPayload,
        col(FailedPayload.id).in_(failed_payload_ids(session, keys)),
    )
    remove("idempotency_records", IdempotencyRecord, idempotency_records_where(keys))
    session.expunge(contact)
    remove("contacts", Contact, col(Contact.id) == contact_id)

    for identifier in keys:
        suppress(session, key=key, wa_id=identifier, reason=ERASURE_REASON)
    digest = suppression_digest(key, keys[0])
    session.add(
        ErasureRecord(
            digest=digest,
            token_fingerprint=token_fingerprint,
            erased_at=erased_at,
            removed=removed,
        )
    )
    session.flush()
    return Erasure(digest=digest, removed=removed)
