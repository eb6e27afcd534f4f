"""A contact's place in the dialogue, read into the flow's values and written back with the
ledger rows of a step, in the caller's transaction.

The responder (a customer's message) and Meta's refusals (a 131050 on a send) both decide through
the flow and write through here, so the stage always follows the consent it reflects.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from typing import Any

from pydantic_core import PydanticUndefined
from sqlalchemy import Select, bindparam, inspect
from sqlalchemy.orm.attributes import set_committed_value
from sqlmodel import Session, col

from flows.model import DialogueState, Stage, StepResult
from flows.policy import Purpose
from storage.consents import record
from storage.deferred import insert_row, update_row
from storage.models import Consent, Contact, DialogueRow, WebOptinRequest
from storage.orm_rows import Reads, built, loaded, rows_of, select_all
from storage.outbox import cancel_pending
from storage.shown import LAST_SHOWN, NOTHING_SHOWN, LastShown, shown_by_contact
from storage.types import utcnow
from storage.web_optin import LIVE_REQUESTS, as_requested, live_since, newest_by_contact


def load_state(
    session: Session, contact: Contact, *, new: bool = False
) -> tuple[DialogueRow, DialogueState]:
    """The contact's dialogue row and state. `new`: the contact was created in this transaction,
    so no row refers to it yet and nothing is read (a first message's four reads saved)."""
    if new:
        return new_row(contact.id), DialogueState(language=contact.language)  # type: ignore[arg-type]
    return load_states(session, [contact])[contact.id]  # type: ignore[index]


def load_states(
    session: Session, contacts: Collection[Contact]
) -> dict[int, tuple[DialogueRow, DialogueState]]:
    """load_state for each of these contacts, in four reads however many they are: on
    PostgreSQL all four in one round trip (a returning customer's every message reads them)."""
    ids = [contact.id for contact in contacts if contact.id is not None]
    if not ids:
        return {}
    return states_from(session, contacts, select_all(session, state_reads(ids)))


def state_reads(contact_ids: list[int]) -> Reads:
    """What load_states reads for these contacts: their dialogue rows, current consents, the
    last question and withdrawal shown to them, and their pending web opt-ins."""
    named = {"contact_ids": contact_ids}
    return [
        (_DIALOGUES, named),
        (_CONSENTS, named),
        (LAST_SHOWN, named),
        (LIVE_REQUESTS, live_since(contact_ids)),
    ]


def states_from(
    session: Session, contacts: Collection[Contact], read: Sequence[Sequence[Sequence[Any]]]
) -> dict[int, tuple[DialogueRow, DialogueState]]:
    """load_states from the rows of state_reads, however they were read."""
    dialogues, consents, shown, requests = read
    rows = {row.contact_id: row for row in loaded(session, DialogueRow, dialogues)}
    consents_of: dict[int, list[Consent]] = {}
    for consent in loaded(session, Consent, consents):
        consents_of.setdefault(consent.contact_id, []).append(consent)
    shown_to = shown_by_contact(shown)
    live = newest_by_contact(loaded(session, WebOptinRequest, requests))
    return {
        contact.id: _state(
            contact,
            rows.get(contact.id) or new_row(contact.id),
            consents_of.get(contact.id, []),
            shown_to.get(contact.id, NOTHING_SHOWN),
            live.get(contact.id),
        )
        for contact in contacts
        if contact.id is not None
    }


def new_row(contact_id: int) -> DialogueRow:
    """A contact's first dialogue row, not yet written (save_result inserts it with SQL): the
    model's defaults, as a load builds an instance, without its constructor's validation
    (3.6 us against 48, on every new customer's first message)."""
    made = {name: factory() for name, factory in _FACTORIES}
    return built(DialogueRow, {**_DEFAULTS, **made, "contact_id": contact_id}.items())


def _state(
    contact: Contact,
    row: DialogueRow,
    consents: list[Consent],
    shown: LastShown,
    request: WebOptinRequest | None,
) -> tuple[DialogueRow, DialogueState]:
    state = DialogueState(
        stage=Stage(row.stage),
        language=row.language or contact.language,
        language_chosen=row.language_chosen,
        pending=tuple(row.pending or ()),
        prompt_version=row.prompt_version,
        asked_at=row.asked_at,
        reprompts=row.reprompts,
        unreadable_for=row.unreadable_for,
        granted=frozenset(c.category for c in consents if c.granted),
        awaiting_confirmation=frozenset(
            c.category for c in consents if c.granted and not c.confirmed
        ),
        requested=as_requested(request),
        entry_point=row.entry_point,
        # Read from the outbound log at answer time rather than copied into the dialogue row
        # when the dispatcher settles a send: the log is the one truth about what went out,
        # whichever process sent it and however often it was retried, and it needs no write
        # from the dispatcher into a row the webhook holds locked.
        last_question=shown.question,
        withdrawn_at=shown.withdrawn_at,
    )
    return row, state


def save_result(
    session: Session,
    contact: Contact,
    row: DialogueRow,
    result: StepResult,
) -> None:
    """The new state and the ledger rows; replies are the caller's to queue."""
    assert contact.id is not None
    new_state = result.state
    # A stop said in a group withdraws with no confirmation; it still stops what was queued.
    stopped_now = row.stage != Stage.STOPPED.value and new_state.stage is Stage.STOPPED
    values = {
        "contact_id": contact.id,
        "stage": new_state.stage.value,
        "language": new_state.language,
        "language_chosen": new_state.language_chosen,
        "pending": list(new_state.pending),
        "entry_point": new_state.entry_point,
        "prompt_version": new_state.prompt_version,
        "asked_at": new_state.asked_at,
        "reprompts": new_state.reprompts,
        "unreadable_for": new_state.unreadable_for,
        "updated_at": utcnow(),
    }
    if inspect(row).transient:
        # Their first row: written with SQL (every new customer's path), now or at the next
        # flush (storage.deferred), before anything reads it back.
        insert_row(session, _DIALOGUE, values)
    else:
        # With SQL too, not a flush of the row: then nothing is left for the ORM to write, and
        # on PostgreSQL the body's rows go with its COMMIT (storage.deferred).
        del values["contact_id"]
        update_row(session, _DIALOGUE, contact.id, values)
        for name, value in values.items():
            set_committed_value(row, name, value)
    if new_state.language and contact.language != new_state.language:
        # With SQL, not a flush of the contact (a new customer's first message sets it).
        update_row(session, _CONTACT, contact.id, {"language": new_state.language})
        set_committed_value(contact, "language", new_state.language)

    record(session, contact_id=contact.id, changes=result.changes)
    if stopped_now or any(r.purpose is Purpose.STOP for r in result.replies):
        # After STOP nothing else goes out but its one confirmation (C07).
        cancel_pending(session, contact_id=contact.id)


_DIALOGUE = DialogueRow.__table__  # type: ignore[attr-defined]
# The model's defaults: a value, a factory called for each row, or none given (None).
_DEFAULTS = {
    name: None if field.default is PydanticUndefined else field.default
    for name, field in DialogueRow.model_fields.items()
}
_FACTORIES = tuple(
    (name, field.default_factory)
    for name, field in DialogueRow.model_fields.items()
    if field.default_factory is not None
)
_CONTACT = Contact.__table__  # type: ignore[attr-defined]


def _of_contacts(model: type[DialogueRow] | type[Consent]) -> Select[Any]:
    return rows_of(model).where(col(model.contact_id).in_(bindparam("contact_ids", expanding=True)))


# Every column of the contacts' dialogue rows, and of their current consents.
_DIALOGUES = _of_contacts(DialogueRow)
_CONSENTS = _of_contacts(Consent)
