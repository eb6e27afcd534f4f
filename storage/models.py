"""The tables. SQL is the source of truth for everything that must not be lost."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import (
    JSON,
    BigInteger,
    Column,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    SmallInteger,
    Text,
    UniqueConstraint,
    false,
    text,
    true,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlmodel import Field, SQLModel

from storage import limits
from storage.types import UTCDateTime, utcnow

JSONColumn = JSON().with_variant(JSONB(), "postgresql")
# A 64-bit id that SQLite still numbers by itself (only INTEGER PRIMARY KEY is its rowid).
BIG_ID = BigInteger().with_variant(Integer(), "sqlite")


def _time(*, nullable: bool = False, index: bool = False, default: bool = False) -> Any:
    return Field(
        default_factory=utcnow if default else None,
        sa_type=UTCDateTime,
        nullable=nullable,
        index=index,
    )


def _json(*, nullable: bool = True) -> Any:
    return Field(default=None, sa_column=Column(JSONColumn, nullable=nullable))


def _present_index(table: str, column: str, *, unique: bool = False) -> Index:
    """An index of the table's rows that have this column (partial: NULLs left out)."""
    present = text(f"{column} IS NOT NULL")
    return Index(
        f"ix_{table}_{column}",
        column,
        unique=unique,
        postgresql_where=present,
        sqlite_where=present,
    )


def new_id() -> str:
    return uuid.uuid4().hex


class Contact(SQLModel, table=True):
    """A person: their phone number (optional), business-scoped user ids and username, each as
    Meta last reported it. Consents belong to the person, whatever identifiers change (C27)."""

    __tablename__ = "contact"
    # Indexes of the identifiers a contact may lack cover only those it has: looked up by
    # equality, they find the same rows, and a contact imported by number adds nothing to them.
    __table_args__ = (
        _present_index("contact", "user_id", unique=True),
        # Not unique: the same person across the business's linked portfolios; a hint, not a key.
        _present_index("contact", "parent_user_id"),
        _present_index("contact", "last_inbound_at"),
    )

    id: int | None = Field(default=None, primary_key=True)
    wa_id: str | None = Field(default=None, max_length=limits.WA_ID, unique=True, index=True)
    user_id: str | None = Field(default=None, max_length=limits.USER_ID)
    parent_user_id: str | None = Field(default=None, max_length=limits.USER_ID)
    name: str | None = Field(default=None, max_length=limits.PROFILE_NAME)
    username: str | None = Field(default=None, max_length=limits.USERNAME)
    country_code: str | None = Field(default=None, max_length=limits.COUNTRY_CODE)
    language: str | None = Field(default=None, max_length=8)
    created_at: datetime = _time(default=True)
    first_inbound_at: datetime | None = _time(nullable=True)
    last_inbound_at: datetime | None = _time(nullable=True)
    # Meta's 131049 (per-user marketing limit): no marketing message to this person until then.
    marketing_held_until: datetime | None = _time(nullable=True)


class IdentityChange(SQLModel, table=True):
    """One change of an identifier of a contact, as Meta reported it: the evidence that consents
    followed the person. Erased with the contact; what stays after that is keyed hashes only."""

    __tablename__ = "identity_change"
    __table_args__ = (Index("ix_identity_change_previous", "field", "previous"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(
        sa_column=Column(ForeignKey("contact.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    field: str = Field(max_length=16)  # wa_id | user_id | parent_user_id | username
    previous: str | None = Field(default=None, max_length=limits.USER_ID)
    current: str | None = Field(default=None, max_length=limits.USER_ID)
    # user_changed_number | user_changed_user_id (Meta's notices) | reported | merged
    reason: str = Field(max_length=32)
    occurred_at: datetime = _time()  # Meta's timestamp of the message that reported it
    recorded_at: datetime = _time(default=True)
    wamid: str | None = Field(default=None, max_length=limits.WAMID)  # that message
    note: str | None = Field(default=None, sa_type=Text)  # WhatsApp's own sentence, if any


class DialogueRow(SQLModel, table=True):
    """A contact's place in the consent dialogue (flows.model.DialogueState, persisted)."""

    __tablename__ = "dialogue"

    contact_id: int = Field(
        sa_column=Column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    )
    stage: str = Field(default="new", max_length=16)
    language: str | None = Field(default=None, max_length=8)
    # True once chosen with ENGLISH / العربية; a guess from their writing may change.
    language_chosen: bool = Field(default=False, sa_column_kwargs={"server_default": false()})
    pending: list[str] | None = _json()
    # The source tag of the wa.me link or QR code the conversation was opened with, recorded
    # with the grants that answer its prompt.
    entry_point: str | None = Field(default=None, max_length=64)
    prompt_version: str | None = Field(default=None, max_length=64)
    asked_at: datetime | None = _time(nullable=True)
    reprompts: int = 0
    unreadable_for: str | None = Field(default=None, max_length=96)
    updated_at: datetime = _time(default=True)


class Message(SQLModel, table=True):
    """The conversation log, both directions; outbound rows are what the business API reports."""

    __tablename__ = "message"
    __table_args__ = (
        # Also every lookup by contact alone (a second index of contact_id would cost each
        # write an entry for nothing).
        Index("ix_message_contact_time", "contact_id", "meta_timestamp"),
        # Only an edit or a deletion names the message it changes.
        _present_index("message", "original_wamid"),
        # Room on each page for a batch of its rows' status changes, made in place
        # (PostgreSQL; migration e5c2b7a9d410).
        {"postgresql_with": {"fillfactor": 70}},
    )

    id: str = Field(default_factory=new_id, primary_key=True, max_length=32)
    contact_id: int = Field(
        sa_column=Column(ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    )
    direction: str = Field(max_length=3)  # "in" | "out"
    wamid: str | None = Field(default=None, max_length=limits.WAMID, unique=True)
    phone_number_id: str | None = Field(default=None, max_length=limits.PHONE_NUMBER_ID)
    type: str = Field(max_length=limits.MESSAGE_TYPE)
    text: str | None = Field(default=None, sa_type=Text)
    status: str = Field(default="received", max_length=limits.STATUS)
    status_at: datetime | None = _time(nullable=True)
    error_code: int | None = Field(default=None, sa_type=BigInteger)
    error_title: str | None = Field(default=None, max_length=limits.ERROR_TITLE)
    meta_timestamp: datetime = _time()  # Meta's timestamp inbound; queue time outbound
    created_at: datetime = _time(default=True)
    category: str | None = Field(default=None, max_length=limits.CATEGORY_ID)
    purpose: str | None = Field(default=None, max_length=32)
    text_version: str | None = Field(default=None, max_length=64)
    context_wamid: str | None = Field(default=None, max_length=limits.WAMID)
    # Inbound in a group chat: the group (C31). Private chats have none.
    group_id: str | None = Field(default=None, max_length=limits.WAMID)
    # An edit or a deletion: the message it changes, kept beside it (C32, C33).
    original_wamid: str | None = Field(default=None, max_length=limits.WAMID)
    raw: dict[str, Any] | None = _json()  # the inbound event or the outbound Graph API body


class OutboxItem(SQLModel, table=True):
    """A message waiting to be sent; written in the transaction that decided to send it."""

    __tablename__ = "outbox"
    __table_args__ = (Index("ix_outbox_claim_order", "priority", "due_at", "id"),)

    id: int | None = Field(default=None, primary_key=True)
    # None for read receipts, which are not part of the conversation log.
    message_id: str | None = Field(
        default=None,
        sa_column=Column(ForeignKey("message.id", ondelete="CASCADE"), nullable=True, unique=True),
    )
    phone_number_id: str = Field(max_length=limits.PHONE_NUMBER_ID)
    kind: str = Field(default="message", max_length=16)  # "message" | "read_receipt"
    payload: dict[str, Any] = _json(nullable=False)
    # Lower goes first: 0 answers someone who just wrote, 1 is a business send (see outbox).
    priority: int = Field(default=0, sa_type=SmallInteger, sa_column_kwargs={"server_default": "0"})
    due_at: datetime = _time(index=True, default=True)
    attempts: int = 0
    claimed_until: datetime | None = _time(nullable=True)
    claimed_by: str | None = Field(default=None, max_length=64)
    last_error: str | None = Field(default=None, sa_type=Text)
    created_at: datetime = _time(default=True)


class StatusEvent(SQLModel, table=True):
    """Every delivery status Meta reported, once per (wamid, status)."""

    __tablename__ = "status_event"
    __table_args__ = (UniqueConstraint("wamid", "status", name="uq_status_event_wamid_status"),)

    id: int | None = Field(default=None, primary_key=True)
    wamid: str = Field(max_length=limits.WAMID)  # looked up by the (wamid, status) key
    status: str = Field(max_length=limits.STATUS)
    phone_number_id: str | None = Field(default=None, max_length=limits.PHONE_NUMBER_ID)
    recipient_id: str | None = Field(default=None, max_length=limits.USER_ID)
    recipient_user_id: str | None = Field(default=None, max_length=limits.USER_ID)
    # Sent to a group: the participant this status is about, by number, else by user id.
    recipient_participant_id: str | None = Field(default=None, max_length=limits.USER_ID)
    meta_timestamp: datetime = _time()
    error_code: int | None = Field(default=None, sa_type=BigInteger)
    error_title: str | None = Field(default=None, max_length=limits.ERROR_TITLE)
    raw: dict[str, Any] | None = _json()
    received_at: datetime = _time(index=True, default=True)  # pruned by age


class ConsentEvent(SQLModel, table=True):
    """The append-only consent ledger: one row per category per decision (C12)."""

    __tablename__ = "consent_event"

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(
        sa_column=Column(ForeignKey("contact.id", ondelete="CASCADE"), nullable=False, index=True)
    )
    category: str = Field(max_length=limits.CATEGORY_ID)
    granted: bool
    source: str = Field(max_length=limits.CONSENT_SOURCE)
    occurred_at: datetime = _time()
    recorded_at: datetime = _time(default=True)
    text_version: str = Field(max_length=64)
    text: str = Field(sa_type=Text)
    evidence: dict[str, Any] | None = _json()


class Consent(SQLModel, table=True):
    """Current consent per contact and category, derived from the ledger in the same transaction."""

    __tablename__ = "consent"
    __table_args__ = (Index("ix_consent_category_granted", "category", "granted"),)

    contact_id: int = Field(
        sa_column=Column(ForeignKey("contact.id", ondelete="CASCADE"), primary_key=True)
    )
    category: str = Field(primary_key=True, max_length=limits.CATEGORY_ID)
    granted: bool
    source: str = Field(max_length=limits.CONSENT_SOURCE)
    updated_at: datetime = _time()
    granted_at: datetime | None = _time(nullable=True)
    # False while a consent captured off WhatsApp awaits its double opt-in confirmation.
    confirmed: bool = Field(default=True, sa_column_kwargs={"server_default": true()})


class PreferenceEvent(SQLModel, table=True):
    """Meta's user_preferences updates (marketing stop/resume made inside WhatsApp)."""

    __tablename__ = "preference_event"
    __table_args__ = (
        UniqueConstraint("contact_key", "value", "occurred_at", name="uq_preference_event"),
    )

    id: int | None = Field(default=None, primary_key=True)
    contact_key: str = Field(max_length=limits.USER_ID)  # a wa_id, or a user_id
    category: str = Field(max_length=limits.PREFERENCE_CATEGORY)
    value: str = Field(max_length=limits.PREFERENCE_VALUE)
    detail: str | None = Field(default=None, sa_type=Text)
    occurred_at: datetime = _time()
    raw: dict[str, Any] | None = _json()
    received_at: datetime = _time(default=True)


class OtherEvent(SQLModel, table=True):
    """Changes the bot does not act on (other fields), kept and acknowledged."""

    __tablename__ = "other_event"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)  # Meta's retries store nothing twice
    field: str = Field(max_length=limits.CHANGE_FIELD)
    entry_id: str | None = Field(default=None, max_length=limits.ENTRY_ID)
    raw: dict[str, Any] | None = _json()
    received_at: datetime = _time(default=True)


class FailedPayload(SQLModel, table=True):
    """Inbox of signed bodies or items that could not be parsed: kept for support, never lost."""

    __tablename__ = "failed_payload"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, unique=True)
    problem: str = Field(sa_type=Text)
    body: bytes = Field(sa_type=LargeBinary)
    received_at: datetime = _time(default=True)
    resolved_at: datetime | None = _time(nullable=True)


class Suppression(SQLModel, table=True):
    """A keyed hash of an erased number: nothing is sent to it, old consents are refused (C18)."""

    __tablename__ = "suppression"

    digest: str = Field(primary_key=True, max_length=64)
    reason: str = Field(max_length=32)
    created_at: datetime = _time(default=True)


class IdempotencyRecord(SQLModel, table=True):
    """The answer to a POST made with an Idempotency-Key, replayed when the POST is retried."""

    __tablename__ = "idempotency_record"

    key: str = Field(primary_key=True, max_length=limits.IDEMPOTENCY_KEY)
    request_digest: str = Field(max_length=64)
    status_code: int
    response: dict[str, Any] | None = _json()
    created_at: datetime = _time(index=True, default=True)  # pruned after a day


class ErasureRecord(SQLModel, table=True):
    """Proof that an erasure happened: when, by which token; the number only as a keyed hash."""

    __tablename__ = "erasure_record"

    id: int | None = Field(default=None, primary_key=True)
    digest: str = Field(max_length=64, index=True)
    token_fingerprint: str = Field(max_length=16)
    erased_at: datetime = _time(default=True)
    removed: dict[str, Any] | None = _json()  # how many rows of each kind were removed


class ControlFlag(SQLModel, table=True):
    """Process-wide switches every worker sees, such as dispatching paused on an expired token;
    also each running dispatcher's heartbeat (storage.control), by which they count each other."""

    __tablename__ = "control_flag"

    name: str = Field(primary_key=True, max_length=64)
    value: str = Field(sa_type=Text)
    updated_at: datetime = _time(default=True)


class ConsoleSession(SQLModel, table=True):
    """A signed-in console session; deleting the row ends it for every copy of its cookie.

    The cookie carries a random token and the row is found by the token's SHA-256, so a copy of
    this table cannot be replayed as cookies.
    """

    __tablename__ = "console_session"

    id: str = Field(primary_key=True, max_length=64)  # sha256 hex of the cookie's token
    username: str = Field(max_length=64, index=True)
    csrf_token: str = Field(max_length=64)
    created_at: datetime = _time(default=True)  # the absolute lifetime counts from here
    last_seen_at: datetime = _time(default=True)  # the idle timeout counts from here
    address: str | None = Field(default=None, max_length=64)  # where it signed in from
    user_agent: str | None = Field(default=None, max_length=256)


class AuditEvent(SQLModel, table=True):
    """Who did what, in the console or through the API. Append-only: database triggers refuse
    UPDATE and DELETE. A contact is named only masked and by a keyed hash, never in clear."""

    __tablename__ = "audit_event"

    id: int | None = Field(default=None, primary_key=True)
    occurred_at: datetime = _time(default=True, index=True)
    channel: str = Field(max_length=8)  # "console" | "api"
    actor: str = Field(max_length=96)  # a staff username, or an API token's fingerprint
    action: str = Field(max_length=32, index=True)
    subject: str | None = Field(default=None, max_length=64)  # masked: "••••••••4567"
    subject_digest: str | None = Field(default=None, max_length=64, index=True)
    address: str | None = Field(default=None, max_length=64)
    detail: dict[str, Any] | None = _json()


class WebOptinRequest(SQLModel, table=True):
    """A choice made on the hosted opt-in page (C28): nothing is granted until the person taps
    the double opt-in template's doi:yes on WhatsApp, which grants exactly these categories."""

    __tablename__ = "web_optin_request"
    __table_args__ = (Index("ix_web_optin_request_contact_state", "contact_id", "state"),)

    id: int | None = Field(default=None, primary_key=True)
    contact_id: int = Field(
        sa_column=Column(ForeignKey("contact.id", ondelete="CASCADE"), nullable=False)
    )
    categories: list[str] = _json(nullable=False)
    language: str = Field(max_length=8)
    text: str = Field(sa_type=Text)  # the page exactly as shown, as the ledger will quote it
    text_version: str = Field(max_length=64)
    # entry_point (the source tag), client (a keyed hash of the address, never the address).
    evidence: dict[str, Any] = _json(nullable=False)
    submitted_at: datetime = _time(default=True)
    # When the confirmation template was queued for it; None: a template sent for an earlier
    # request that day stands for this one too (at most one a day per number).
    template_queued_at: datetime | None = _time(nullable=True)
    state: str = Field(default="pending", max_length=16)  # pending confirmed declined replaced
    settled_at: datetime | None = _time(nullable=True)


class ConsentWebhook(SQLModel, table=True):
    """The business's consent webhook outbox (C29): written in the transaction of the ledger row
    or the erasure it reports, delivered in id order per contact, deleted once answered 2xx."""

    __tablename__ = "consent_webhook"
    __table_args__ = (Index("ix_consent_webhook_contact_order", "contact_id", "id"),)

    id: int | None = Field(default=None, sa_type=BIG_ID, primary_key=True)
    event_id: str = Field(max_length=32, unique=True)  # the body's "id": receivers drop repeats
    # No foreign key: an erasure deletes the contact, and its contact.erased must still go.
    contact_id: int = Field(sa_type=BigInteger)
    type: str = Field(max_length=32)
    body: str = Field(sa_type=Text)  # the exact bytes signed and sent, the same on every retry
    created_at: datetime = _time(default=True)
    due_at: datetime = _time(index=True, default=True)
    attempts: int = 0
    last_error: str | None = Field(default=None, sa_type=Text)
    claimed_until: datetime | None = _time(nullable=True)
