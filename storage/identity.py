"""Who a contact is: each identifier as Meta last reported it, the history of its changes, and
one contact per person.

A person may be known by a phone number (``wa_id``), a business-scoped user id, a parent user id
(the same person across the business's linked portfolios) and a username; any of them can
change, and the number can disappear from webhooks. Consents belong to the contact, so they
follow every change (C27). Each change is kept as an :class:`IdentityChange`: the evidence, with
Meta's time and the message that reported it. When a message shows that two contacts are one
person (a number one holds and a user id the other holds), they are joined: conversation, ledger
and current consents move to one contact, the newer decision per category staying in force.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, fields
from datetime import datetime
from enum import StrEnum

from sqlalchemy import and_, func, or_, update
from sqlmodel import Session, col, select

from storage.db import is_postgres
from storage.models import Consent, ConsentEvent, Contact, DialogueRow, IdentityChange, Message

# Unique per contact: a message naming one of them names that contact.
KEYS = ("wa_id", "user_id")


class Reason(StrEnum):
    """Why an identifier changed."""

    NUMBER_CHANGED = "user_changed_number"  # Meta's system notice
    USER_ID_CHANGED = "user_changed_user_id"  # Meta's system notice
    REPORTED = "reported"  # a message from the person carried a new or different identifier
    MERGED = "merged"  # two contacts proved to be one person were joined


@dataclass(frozen=True, slots=True, kw_only=True)
class Identity:
    """Identifiers as one message reports them; None where it says nothing."""

    wa_id: str | None = None
    user_id: str | None = None
    parent_user_id: str | None = None
    username: str | None = None

    def reported(self) -> dict[str, str]:
        return {f.name: value for f in fields(self) if (value := getattr(self, f.name))}

    def keys(self) -> tuple[str, ...]:
        return tuple(value for name in KEYS if (value := getattr(self, name)))


@dataclass(frozen=True, slots=True, kw_only=True)
class Report:
    """Where an identity came from, for the history: Meta's time and message."""

    at: datetime
    reason: Reason = Reason.REPORTED
    wamid: str | None = None
    note: str | None = None  # WhatsApp's own sentence, for a system notice


def identity_of(contact: Contact) -> Identity:
    return Identity(
        wa_id=contact.wa_id,
        user_id=contact.user_id,
        parent_user_id=contact.parent_user_id,
        username=contact.username,
    )


def lock_holders(session: Session, identity: Identity) -> list[Contact]:
    """The contacts holding any of identity's keys now, oldest first, row-locked on PostgreSQL."""
    conditions = [
        getattr(Contact, name) == value for name in KEYS if (value := getattr(identity, name))
    ]
    if not conditions:
        return []
    statement = select(Contact).where(or_(*conditions)).order_by(col(Contact.id))
    if is_postgres(session.get_bind()):
        statement = statement.with_for_update()
    return list(session.exec(statement))


def earlier_holder(session: Session, identity: Identity, *, at: datetime) -> int | None:
    """The contact that held one of identity's keys when a message of `at` was written, and has
    changed it since: a message delivered late, after a change of number or user id."""
    held = [
        and_(IdentityChange.field == name, IdentityChange.previous == value)
        for name in KEYS
        if (value := getattr(identity, name))
    ]
    if not held:
        return None
    return session.exec(
        select(IdentityChange.contact_id)
        .where(or_(*held), IdentityChange.occurred_at > at)
        .order_by(col(IdentityChange.occurred_at))
    ).first()


def weak_match(session: Session, identity: Identity) -> int | None:
    """A contact sharing the parent user id or the username, when nothing else names one.

    A parent id is the same person in another portfolio (its user id differs); a username is
    the person's own handle. Either is taken only when the contact's number does not contradict
    the message's, and a username only when its user id does not either.
    """
    for name in ("parent_user_id", "username"):
        value = getattr(identity, name)
        if not value:
            continue
        for contact in session.exec(
            select(Contact).where(getattr(Contact, name) == value).order_by(col(Contact.id))
        ):
            if _contradicts(identity.wa_id, contact.wa_id):
                continue
            if name == "username" and _contradicts(identity.user_id, contact.user_id):
                continue
            return contact.id
    return None


def _contradicts(reported: str | None, held: str | None) -> bool:
    return reported is not None and held is not None and reported != held


def adopt(session: Session, contact: Contact, identity: Identity, report: Report) -> list[str]:
    """Give the contact every identifier the report carries, recording each change; the numbers
    and user ids it had, and those of contacts joined into it because they held one of them
    (the caller carries their suppression over).

    A message older than the last change of an identifier does not undo that change: Meta does
    not deliver in order, and a late message still names the old number.
    """
    had = list(_strong(identity_of(contact)))
    changed = False
    for name, value in identity.reported().items():
        current = getattr(contact, name)
        if current == value:
            continue
        changed = True
        if (
            current is not None
            and report.reason is Reason.REPORTED
            and _changed_since(session, contact, name, report.at)
        ):
            continue
        if name in KEYS:
            for holder in lock_holders(session, Identity(**{name: value})):
                if holder.id != contact.id:
                    had.extend(_strong(identity_of(holder)))
                    join(session, keep=contact, other=holder, report=report)
            current = getattr(contact, name)  # the joined contact may have brought it
            if current == value:
                continue
        setattr(contact, name, value)
        _record(session, contact, name, current, value, report)
    session.add(contact)
    if changed:  # read back at once; a batch's other writes need not be
        session.flush()
    return had


def note_previous(session: Session, contact: Contact, before: Identity, report: Report) -> None:
    """Record identifiers the person had and this contact never held, as the report says."""
    for name, value in before.reported().items():
        if getattr(contact, name) != value:
            _record(session, contact, name, value, getattr(contact, name), report)
    session.flush()


def join(session: Session, *, keep: Contact, other: Contact, report: Report) -> None:
    """Make other's person one with keep's: its conversation, ledger, consents and history move
    to keep, the newer decision per category stays in force, and other is deleted."""
    assert keep.id is not None and other.id is not None
    for model in (Message, ConsentEvent, IdentityChange):
        session.execute(
            update(model)
            .where(model.contact_id == other.id)  # type: ignore[attr-defined]
            .values(contact_id=keep.id)
            .execution_options(synchronize_session=False)
        )
    for theirs in list(session.exec(select(Consent).where(Consent.contact_id == other.id))):
        ours = session.get(Consent, (keep.id, theirs.category))
        if ours is None or theirs.updated_at > ours.updated_at:
            if ours is not None:
                session.delete(ours)
                session.flush()
            session.add(_moved_consent(theirs, keep.id))
        session.delete(theirs)
    their_dialogue, our_dialogue = (
        session.get(DialogueRow, other.id),
        session.get(DialogueRow, keep.id),
    )
    if their_dialogue is not None:
        if our_dialogue is None or their_dialogue.updated_at > our_dialogue.updated_at:
            if our_dialogue is not None:
                session.delete(our_dialogue)
                session.flush()
            session.add(_moved_dialogue(their_dialogue, keep.id))
        session.delete(their_dialogue)

    for name in ("name", "country_code", "language"):
        if getattr(keep, name) is None:
            setattr(keep, name, getattr(other, name))
    keep.created_at = min(keep.created_at, other.created_at)
    keep.first_inbound_at = _earliest(keep.first_inbound_at, other.first_inbound_at)
    keep.last_inbound_at = _latest(keep.last_inbound_at, other.last_inbound_at)
    keep.marketing_held_until = _latest(keep.marketing_held_until, other.marketing_held_until)
    theirs_identity = identity_of(other).reported()
    # Their rows are gone before the contact: the database's cascade would otherwise beat the
    # session to them (the session knows no relationship between the tables).
    session.flush()
    session.delete(other)
    session.flush()  # other's unique identifiers are free before keep takes them
    for name, value in theirs_identity.items():
        mine = getattr(keep, name)
        if mine == value:
            continue
        if mine is None:
            setattr(keep, name, value)
        # The joined contact's identifier (previous) and what the person holds now (current):
        # evidence of the join, and one the person is known by when erased.
        _record(session, keep, name, value, getattr(keep, name), report, reason=Reason.MERGED)
    session.add(keep)
    session.flush()


def strong_identifiers(contact: Contact) -> tuple[str, ...]:
    """The identifiers suppression and erasure go by: number, user id and parent user id."""
    return _strong(identity_of(contact))


def _strong(identity: Identity) -> tuple[str, ...]:
    return tuple(v for v in (identity.wa_id, identity.user_id, identity.parent_user_id) if v)


def history_of(session: Session, *, contact_id: int) -> list[IdentityChange]:
    return list(
        session.exec(
            select(IdentityChange)
            .where(IdentityChange.contact_id == contact_id)
            .order_by(col(IdentityChange.occurred_at), col(IdentityChange.id))
        )
    )


def known_identifiers(session: Session, contact: Contact) -> tuple[str, ...]:
    """Every number and user id the person is or was known by, current ones first.

    Earlier ones another contact holds now are left out: a number can pass to someone else.
    """
    found = list(strong_identifiers(contact))
    earlier = session.exec(
        select(IdentityChange.previous, IdentityChange.current).where(
            IdentityChange.contact_id == contact.id,
            col(IdentityChange.field).in_((*KEYS, "parent_user_id")),
        )
    ).all()
    candidates = [v for pair in earlier for v in pair if v and v not in found]
    held = _held_by_others(session, contact, candidates)
    for value in candidates:
        if value not in held and value not in found:
            found.append(value)
    return tuple(found)


def _held_by_others(session: Session, contact: Contact, values: Iterable[str]) -> set[str]:
    values = list(values)
    if not values:
        return set()
    rows = session.exec(
        select(Contact.wa_id, Contact.user_id, Contact.parent_user_id).where(
            Contact.id != contact.id,
            or_(
                col(Contact.wa_id).in_(values),
                col(Contact.user_id).in_(values),
                col(Contact.parent_user_id).in_(values),
            ),
        )
    ).all()
    return {value for row in rows for value in row if value in values}


def _changed_since(session: Session, contact: Contact, name: str, at: datetime) -> bool:
    latest = session.exec(
        select(func.max(IdentityChange.occurred_at)).where(
            IdentityChange.contact_id == contact.id, IdentityChange.field == name
        )
    ).one()
    return latest is not None and latest > at


def _record(
    session: Session,
    contact: Contact,
    name: str,
    previous: str | None,
    current: str | None,
    report: Report,
    *,
    reason: Reason | None = None,
) -> None:
    if contact.id is None:
        return  # a new contact: its first identifiers are no change
    session.add(
        IdentityChange(
            contact_id=contact.id,
            field=name,
            previous=previous,
            current=current,
            reason=(reason or report.reason).value,
            occurred_at=report.at,
            wamid=report.wamid,
            note=report.note,
        )
    )


def _moved_consent(row: Consent, contact_id: int) -> Consent:
    return Consent(
        contact_id=contact_id,
        category=row.category,
        granted=row.granted,
        source=row.source,
        updated_at=row.updated_at,
        granted_at=row.granted_at,
        confirmed=row.confirmed,
    )


def _moved_dialogue(row: DialogueRow, contact_id: int) -> DialogueRow:
    values = row.model_dump()
    values["contact_id"] = contact_id
    return DialogueRow(**values)


def _earliest(a: datetime | None, b: datetime | None) -> datetime | None:
    return min((t for t in (a, b) if t is not None), default=None)


def _latest(a: datetime | None, b: datetime | None) -> datetime | None:
    return max((t for t in (a, b) if t is not None), default=None)
