"""The consent policy, pure: may this message go to this person now, and which ledger rows a
decision writes.

Every path that sends or decides asks here: the dialogue (its answers and the rows of each
decision), the business API (a send before it is queued, consent collected elsewhere), the
dispatcher (the same send decision again just before Meta is called) and Meta's refusals.
The callers gather the facts from storage and write what comes back; nothing here does I/O.
"""

from __future__ import annotations

from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from enum import StrEnum

from flows.versioning import text_version

# Free-form text is allowed only this long after the person's last message (C15).
SERVICE_WINDOW = timedelta(hours=24)
# Meta's 131049: no marketing message to that person for a day.
MARKETING_HOLD = timedelta(hours=24)


class ConsentSource(StrEnum):
    """Where a decision was made (C12, C16)."""

    WHATSAPP = "whatsapp"
    META = "meta"  # WhatsApp's own marketing opt-out
    WEB = "web"
    SMS = "sms"
    EMAIL = "email"
    IVR = "ivr"
    PAPER = "paper"


# What a business may record through the API: Meta's own opt-out is Meta's to report, and an ad
# is never consent (C03, C16).
RECORDABLE_SOURCES: tuple[ConsentSource, ...] = (
    ConsentSource.WEB,
    ConsentSource.SMS,
    ConsentSource.EMAIL,
    ConsentSource.IVR,
    ConsentSource.PAPER,
    ConsentSource.WHATSAPP,
)


class Purpose(StrEnum):
    """Why a message goes out: an answer to the person, or the business writing first."""

    PROMPT = "prompt"
    CATEGORY_PROMPT = "category_prompt"
    CONFIRMATION = "confirmation"
    DECLINED = "declined"
    STOP = "stop"
    STOP_CATEGORY = "stop_category"
    HELP = "help"
    PREFERENCES = "preferences"
    PREFERENCES_FORM = "preferences_form"  # the same as a WhatsApp Flow form
    PREFERENCES_SAVED = "preferences_saved"  # the answer to the form: what they now receive
    PREFERENCES_WITHDRAWN = "preferences_withdrawn"  # the same, when the form withdrew some
    LANGUAGE = "language"
    UNREADABLE = "unreadable"
    REPROMPT_LIMIT = "reprompt_limit"
    FALLBACK = "fallback"
    STOP_QUESTION = "stop_question"  # "do you want to stop?", one tap (C21)
    KEPT = "kept"  # the answer to it: nothing changed
    HINT = "hint"  # an answer not understood: how to answer the question on screen
    ALREADY_SUBSCRIBED = "already_subscribed"  # START while subscribed: what they receive
    INFO = "info"
    BUSINESS = "business"  # POST /api/v1/messages
    DOUBLE_OPT_IN = "double_opt_in"  # the confirmation template for consent collected elsewhere


# The messages that ask something: a typed answer answers the last of them we sent (C24).
QUESTION_PURPOSES = frozenset({Purpose.PROMPT, Purpose.CATEGORY_PROMPT, Purpose.STOP_QUESTION})
# The confirmations of a withdrawal: every question sent before one is retired (C23).
WITHDRAWAL_PURPOSES = frozenset(
    {Purpose.STOP, Purpose.STOP_CATEGORY, Purpose.PREFERENCES_WITHDRAWN}
)


# The business writes first: suppression (an erasure) holds these; everything else answers the
# person's own message, and an erased person who writes again is answered (C25).
BUSINESS_PURPOSES = frozenset({Purpose.BUSINESS, Purpose.DOUBLE_OPT_IN, None})


class Refusal(StrEnum):
    """Why a message may not go to this person now."""

    SUPPRESSED = "suppressed"  # erased: nothing the business starts (C18)
    UNKNOWN_CONTACT = "unknown_contact"  # never wrote, or erased since the message was queued
    AWAITING_CONFIRMATION = "awaiting_confirmation"  # double opt-in not tapped yet
    NO_CONSENT = "no_consent"  # the category is not granted (C14)
    MARKETING_LIMITED = "marketing_limited"  # Meta's 131049 holds marketing for a day
    OUTSIDE_SERVICE_WINDOW = "outside_service_window"  # free text after 24 h (C15)


@dataclass(frozen=True, slots=True, kw_only=True)
class Recipient:
    """What the policy needs to know about the person, gathered by the caller."""

    known: bool
    suppressed: bool = False
    sendable: frozenset[str] = frozenset()  # granted, and confirmed where a double opt-in waits
    awaiting_confirmation: frozenset[str] = frozenset()
    marketing_held_until: datetime | None = None
    last_inbound_at: datetime | None = None


@dataclass(frozen=True, slots=True, kw_only=True)
class Outgoing:
    category: str | None  # None: not a category message (an answer, the double opt-in)
    purpose: str | None
    free_text: bool = False  # a text message, not an approved template


def send_refusal(
    message: Outgoing, recipient: Recipient, *, marketing: Collection[str], now: datetime
) -> Refusal | None:
    """Why this message may not go to this person now; None when it may (C14, C15, C18, C25)."""
    if recipient.suppressed and message.purpose in BUSINESS_PURPOSES:
        return Refusal.SUPPRESSED
    if not recipient.known:
        return Refusal.UNKNOWN_CONTACT
    if message.category is not None and message.category not in recipient.sendable:
        if message.category in recipient.awaiting_confirmation:
            return Refusal.AWAITING_CONFIRMATION
        return Refusal.NO_CONSENT
    held = recipient.marketing_held_until
    if message.category in marketing and held is not None and held > now:
        return Refusal.MARKETING_LIMITED
    if message.free_text and not in_service_window(recipient.last_inbound_at, now):
        return Refusal.OUTSIDE_SERVICE_WINDOW
    return None


def in_service_window(last_inbound_at: datetime | None, now: datetime) -> bool:
    return last_inbound_at is not None and now - last_inbound_at <= SERVICE_WINDOW


# ---------------------------------------------------------------------------------------------
# Ledger rows (C12): one per category per decision, with the text the person saw and the ids
# that prove it.


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentChange:
    """One ledger decision for one category (C12)."""

    category: str
    granted: bool
    source: ConsentSource
    text: str  # the exact text the person saw and answered
    text_version: str
    occurred_at: datetime
    evidence: Mapping[str, str] = field(default_factory=dict)  # prompt_wamid, reply_wamid, ...


def decisions(
    categories: Iterable[str],
    *,
    granted: bool,
    source: ConsentSource,
    text: str,
    occurred_at: datetime,
    evidence: Mapping[str, str],
) -> tuple[ConsentChange, ...]:
    """The rows of one decision about these categories, each with the same text and evidence."""
    version = text_version(text)
    return tuple(
        ConsentChange(
            category=category,
            granted=granted,
            source=source,
            text=text,
            text_version=version,
            occurred_at=occurred_at,
            evidence=dict(evidence),
        )
        for category in categories
    )


def withdrawals(
    granted_now: Collection[str],
    categories: Iterable[str],
    *,
    source: ConsentSource,
    text: str,
    occurred_at: datetime,
    evidence: Mapping[str, str],
) -> tuple[ConsentChange, ...]:
    """Withdraw those of categories granted now: a repeated stop adds no rows."""
    return decisions(
        (c for c in categories if c in granted_now),
        granted=False,
        source=source,
        text=text,
        occurred_at=occurred_at,
        evidence=evidence,
    )


# The ledger texts of Meta's marketing signals: the person answered WhatsApp's UI, not ours.
META_OPT_OUT_TEXT = "WhatsApp marketing messages preference: stop"
META_REFUSAL_OPT_OUT_TEXT = (
    "WhatsApp reported error 131050: this person stopped marketing messages from the business."
)

# The ledger texts of the double opt-in template's quick replies (flows.signals.DOI_YES, DOI_NO):
# the template is Meta-approved and fixed, so the row describes the tap rather than quoting it.
CONFIRM_TEXT = (
    "Confirmed on WhatsApp: the contact tapped the double opt-in template's quick reply 'doi:yes'."
)
DECLINE_TEXT = (
    "Declined on WhatsApp: the contact tapped the double opt-in template's quick reply 'doi:no'."
)


def marketing_opt_out(
    granted_now: Collection[str],
    marketing: Iterable[str],
    *,
    occurred_at: datetime,
    evidence: Mapping[str, str],
    text: str = META_OPT_OUT_TEXT,
) -> tuple[ConsentChange, ...]:
    """Meta's marketing opt-out (C13): every granted marketing category, source meta. The text
    says which of Meta's signals it was: the preference, the button, or a 131050 refusal."""
    return withdrawals(
        granted_now,
        marketing,
        source=ConsentSource.META,
        text=text,
        occurred_at=occurred_at,
        evidence=evidence,
    )


def double_opt_in_answers(
    categories: Iterable[str],
    *,
    confirmed: bool,
    occurred_at: datetime,
    evidence: Mapping[str, str],
) -> tuple[ConsentChange, ...]:
    """A tap on the double opt-in template: each category awaiting it granted or withdrawn."""
    return decisions(
        categories,
        granted=confirmed,
        source=ConsentSource.WHATSAPP,
        text=CONFIRM_TEXT if confirmed else DECLINE_TEXT,
        occurred_at=occurred_at,
        evidence=evidence,
    )


def requested_grants(
    categories: Iterable[str],
    *,
    source: ConsentSource,
    text: str,
    occurred_at: datetime,
    evidence: Mapping[str, str],
) -> tuple[ConsentChange, ...]:
    """The doi:yes tap on a choice made off WhatsApp (the hosted page, C28): exactly the chosen
    categories granted, with the page's source and exact text, at the moment of the tap."""
    return decisions(
        categories,
        granted=True,
        source=source,
        text=text,
        occurred_at=occurred_at,
        evidence=evidence,
    )
