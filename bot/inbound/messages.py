"""A body's messages stored, each once, and acted on, in one transaction: in rounds, a sender's
n-th message in round n, each round's senders looked up, read and written together."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from functools import partial
from typing import TYPE_CHECKING, Any

from sqlmodel import Session

from bot.inbound.apart import item_bytes, keep_apart
from bot.inbound.identity import apply_identity_notice, identity_notice
from bot.meta.events import InboundMessage
from bot.wiring.services import Services
from flows.model import DialogueState
from storage.contacts import ContactKeyMissing, lock_or_create_contact, note_inbound
from storage.conversation import hold_inbound, insert_inbound, insert_inbound_many
from storage.db import session_scope
from storage.deferred import deferred_transaction, flush
from storage.identity import Identity, strong_identifiers
from storage.inbox import keep_failed_payload
from storage.known_people import KnownPeople, look_up_people
from storage.models import Contact, DialogueRow
from storage.suppression import last_erased_at

if TYPE_CHECKING:
    from bot.inbound.responder import Responder


def store_together(
    services: Services, rounds: list[list[InboundMessage]], handler: Responder | None
) -> list[object]:
    """Every message in one transaction with no savepoints: the common case, and the cheap one.

    A round's senders are looked up together (storage.known_people), their dialogue states
    read together, and what the round writes is flushed together (a multi-row INSERT per
    table, storage.deferred) before the next round reads it back. Within a round, a message
    reaching someone the round already wrote about reads them again, after a flush. Every
    contact the body names is locked at the start, in id order, so two bodies naming the same
    people never deadlock.
    """
    key = services.settings.suppression_key
    outcomes: list[object] = []
    with deferred_transaction(services.engine) as session, session.no_autoflush:
        known = _look_up(session, key, [m for round_ in rounds for m in round_])
        before = known.stored  # stored by an earlier delivery: nothing to store or answer (C20)
        for number, round_ in enumerate(rounds):
            new = [m for m in round_ if m.wamid not in before]
            if new and number:
                flush(session)
                known = _look_up(session, key, new)
                new = [m for m in new if m.wamid not in known.stored]  # twice in this body
            if not new:
                outcomes += [False] * len(round_)
                continue
            states = known.states  # read with their rows
            together = _independent(new, known)
            acted = _store_independent(
                session, new[:together], handler, key=key, known=known, states=states
            )
            for message in new[together:]:
                if not known.answers(_identifiers(message)):
                    flush(session)
                acted.append(
                    store_message(
                        session, message, handler, suppression_key=key, known=known, states=states
                    )
                )
            each, taken = iter(acted), {id(m) for m in new}
            outcomes += [next(each) if id(m) in taken else False for m in round_]
    return outcomes


def _look_up(session: Session, key: bytes, messages: list[InboundMessage]) -> KnownPeople:
    return look_up_people(
        session, key=key, identities=map(_identity, messages), wamids=(m.wamid for m in messages)
    )


def _independent(round_: list[InboundMessage], known: KnownPeople) -> int:
    """How many of the round's first messages are from people known apart: each new, or held
    by one contact no other of them names, with nothing to join or trace back. Their inbound
    rows can go in together, since no resolution of one depends on another's."""
    contacts: set[int | None] = set()
    for count, message in enumerate(round_):
        identity = _identity(message)
        if identity_notice(message) is not None or not identity.keys():
            return count
        if not known.answers(_identifiers(message)):
            return count
        holders = known.holders_of(identity)
        if len(holders) > 1 or (holders and holders[0].id in contacts):
            return count  # a join, or a contact another message reaches too
        if holders and any(
            getattr(holders[0], name) != value for name, value in identity.reported().items()
        ):
            return count  # the message changes who they are: read as it comes
        if not holders and (
            known.earlier_holder(identity, at=message.timestamp) is not None
            or identity.parent_user_id
            or identity.username
        ):
            return count  # found by its history or a weak match: read as it comes
        if holders:
            contacts.add(holders[0].id)
    return len(round_)


def _store_independent(
    session: Session,
    messages: list[InboundMessage],
    handler: Responder | None,
    *,
    key: bytes,
    known: KnownPeople,
    states: Mapping[int, tuple[DialogueRow, DialogueState]],
) -> list[object]:
    """store_message for messages from people known apart: resolved one by one, their inbound
    rows inserted in one statement (a new sender's held for the body's write), then acted on in
    order."""
    resolved = [_resolve(session, m, suppression_key=key, known=known) for m in messages]
    stored: set[str] = set()
    rows = []
    for message, sender in zip(messages, resolved, strict=True):
        if isinstance(sender, _Sender):
            row = _inbound_row(message, sender.contact.id)
            if sender.created:  # a new sender's message is new: no answer needed
                hold_inbound(session, row)
                stored.add(message.wamid)
            else:
                rows.append(row)
    stored |= insert_inbound_many(session, rows)
    return [
        _act(session, message, sender, message.wamid in stored, handler, states)
        if isinstance(sender, _Sender)
        else sender
        for message, sender in zip(messages, resolved, strict=True)
    ]


def rounds_of(messages: list[InboundMessage]) -> list[list[InboundMessage]]:
    """Each sender's n-th message (by Meta's time) in round n.

    A sender is everyone the messages show to be one person: messages sharing a number or a
    user id, directly or through another message, are one sender's. Senders go in key order.
    """
    parent: dict[str, str] = {}

    def root(identifier: str) -> str:
        while parent.setdefault(identifier, identifier) != identifier:
            identifier = parent[identifier]
        return identifier

    for message in messages:
        keys = _identity(message).keys()
        for other in keys[1:]:
            parent[root(other)] = root(keys[0])
    by_sender: dict[str, list[InboundMessage]] = {}
    for message in messages:
        keys = _identity(message).keys()
        by_sender.setdefault(root(keys[0]) if keys else "", []).append(message)
    rounds: list[list[InboundMessage]] = []
    for sender in sorted(by_sender):
        for number, message in enumerate(sorted(by_sender[sender], key=lambda m: m.timestamp)):
            if number == len(rounds):
                rounds.append([])
            rounds[number].append(message)
    return rounds


def store_each_apart(
    services: Services, ordered: list[InboundMessage], handler: Responder | None
) -> list[object]:
    """Each message in a savepoint of its own, so the one the database refuses is kept for
    support and the rest are stored (C26)."""
    key = services.settings.suppression_key
    with session_scope(services.engine) as session:
        return [
            keep_apart(
                session,
                partial(store_message, session, m, handler, suppression_key=key),
                raw=m.raw,
                what=f"message {m.wamid}",
            )
            for m in ordered
        ]


def store_message(
    session: Session,
    event: InboundMessage,
    handler: Responder | None,
    *,
    suppression_key: bytes,
    known: KnownPeople | None = None,
    states: Mapping[int, tuple[DialogueRow, DialogueState]] | None = None,
) -> bool:
    """Store one inbound message and act on it; False if it was already stored.

    A message written before its sender was erased is not stored again: its stored copy went
    with the erasure, and a replay must not bring the person or a consent back (C25). Meta's
    timestamps are whole seconds, so one from the erasure's own second counts as new: at worst
    it asks again, since the dialogue it could have answered went with the erasure.

    `known`: the round's senders, looked up beforehand; used where it still holds, and told
    whom this message changed. `states`: their dialogue states, read beforehand; used for a
    contact nobody in the round has written about yet.
    """
    sender = _resolve(session, event, suppression_key=suppression_key, known=known)
    if not isinstance(sender, _Sender):
        return sender
    row = _inbound_row(event, sender.contact.id)
    if sender.created:  # a new sender's message is new: no answer needed
        hold_inbound(session, row)
        return _act(session, event, sender, True, handler, states)
    stored = insert_inbound(session, **row)
    return _act(session, event, sender, stored is not None, handler, states)


@dataclass(frozen=True, slots=True)
class _Sender:
    """Who a message is from, resolved and locked, and what the round knows of them."""

    contact: Contact
    created: bool
    known: KnownPeople | None  # None when the round's answers did not hold for them
    written: set[int] | None  # the contacts the round wrote about so far


def _resolve(
    session: Session, event: InboundMessage, *, suppression_key: bytes, known: KnownPeople | None
) -> _Sender | bool:
    """The message's sender, found or created and locked; or the outcome, when there is none
    to act for (an identity notice, a message from before an erasure, no identifier)."""
    notice = identity_notice(event)
    if notice is not None:
        if known is not None:
            known.forget()  # a change of number or user id: who holds what is read again
        # WhatsApp telling of a new number or user id: the contact follows; nobody is answered.
        return apply_identity_notice(session, event, notice, suppression_key=suppression_key)
    profile = event.contact
    identity = _identity(event)
    identifiers = (identity.wa_id, identity.user_id, identity.parent_user_id)
    written = known.written if known is not None else None
    if known is not None and not known.answers(identifiers):
        known = None
    if known is not None:
        erased_at = known.last_erased_at(identifiers)
        # Whatever this message does to these people, a later one reads it back.
        known.touch(identifiers)
        for holder in known.holders_of(identity):
            known.touch(strong_identifiers(holder))
    else:
        erased_at = last_erased_at(session, key=suppression_key, identifiers=identifiers)
    if erased_at is not None and event.timestamp < erased_at.replace(microsecond=0):
        return False
    try:
        contact, created = lock_or_create_contact(
            session,
            wa_id=identity.wa_id,
            user_id=identity.user_id,
            parent_user_id=identity.parent_user_id,
            name=profile.name if profile else None,
            username=identity.username,
            country_code=profile.country_code if profile else None,
            at=event.timestamp,
            wamid=event.wamid,
            suppression_key=suppression_key,
            known=known,
            # A group message is no private message from the person (C31): see _act.
            inbound_at=event.timestamp if event.group_id is None else None,
        )
    except ContactKeyMissing:
        keep_failed_payload(
            session, body=item_bytes(event.raw), problem="message names no wa_id or user_id"
        )
        return False
    if known is not None:
        known.touch((*strong_identifiers(contact), contact.parent_user_id))
    return _Sender(contact, created, known, written)


def _inbound_row(event: InboundMessage, contact_id: int | None) -> dict[str, Any]:
    return {
        "contact_id": contact_id,
        "wamid": event.wamid,
        "phone_number_id": event.phone_number_id,
        "type": event.original_type,
        # A text is logged as typed; anything else as its one-line summary.
        "text": event.text.body if event.text is not None else event.summary,
        "meta_timestamp": event.timestamp,
        "context_wamid": event.context_wamid,
        "raw": dict(event.raw),
        "group_id": event.group_id,
        "original_wamid": event.original_wamid,
    }


def _act(
    session: Session,
    event: InboundMessage,
    sender: _Sender,
    stored: bool,
    handler: Responder | None,
    states: Mapping[int, tuple[DialogueRow, DialogueState]] | None,
) -> bool:
    """Act on a stored message (the dialogue); False if it had been stored before."""
    contact, written = sender.contact, sender.written
    loaded = None
    if written is not None:
        if contact.id in written:
            flush(session)  # the round wrote about them: read that back
        elif not sender.created and sender.known is not None and states is not None:
            loaded = states.get(contact.id)  # type: ignore[arg-type]
        written.add(contact.id)  # type: ignore[arg-type]
    if not stored:
        return False
    if event.group_id is None:  # a group message is no private message from the person (C31)
        note_inbound(contact, event.timestamp)
    session.add(contact)
    if handler is not None:
        handler(session, contact, event, new_contact=sender.created, loaded=loaded)
    return True


def _identity(message: InboundMessage) -> Identity:
    profile = message.contact
    return Identity(
        wa_id=message.wa_id or (profile.wa_id if profile else None),
        user_id=message.user_id or (profile.user_id if profile else None),
        parent_user_id=profile.parent_user_id if profile else None,
        username=profile.username if profile else None,
    )


def _identifiers(message: InboundMessage) -> tuple[str | None, ...]:
    identity = _identity(message)
    return (identity.wa_id, identity.user_id, identity.parent_user_id)
