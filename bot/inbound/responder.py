"""Applies the dialogue to stored events: state, ledger rows and replies in one transaction.

The flow decides (flows.dialogue, pure); this module only translates stored rows and parsed
events into the flow's values and writes the result back.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlmodel import Session

from bot.graph.forms import flow_payload, offered_in
from bot.graph.payloads import buttons_payload, list_payload, text_payload
from bot.meta import InboundMessage
from bot.wiring.services import Services
from flows.dialogue import marketing_preference, step
from flows.forms import ticked_in
from flows.model import DialogueState, Inbound, InboundKind, Reply, SentForm, StepResult
from flows.policy import ConsentSource
from storage import web_optin
from storage.dialogue_state import load_state, save_result
from storage.double_optin import settle_answers
from storage.identity import strong_identifiers
from storage.models import Contact, DialogueRow, new_id
from storage.outbox import enqueue_message, enqueue_read_receipt
from storage.shown import form_token, sent_form, sent_to_contact
from storage.suppression import lift


def to_inbound(session: Session, event: InboundMessage, contact_id: int | None = None) -> Inbound:
    if event.text is not None:
        kind = InboundKind.TEXT
    elif event.reply is not None and event.reply.other_kind == "nfm_reply":
        kind = InboundKind.FLOW  # kept with its fields for the business, not a dialogue answer
    elif event.reply is not None:
        kind = InboundKind.BUTTON
    elif event.reaction is not None:
        kind = InboundKind.REACTION
    elif event.media is not None:
        kind = InboundKind.MEDIA
    elif event.revoke is not None or event.system is not None:
        kind = InboundKind.NOTICE
    elif event.welcome is not None:
        kind = InboundKind.WELCOME
    else:
        kind = InboundKind.UNSUPPORTED
    # The message answered is evidence only if we sent it to this very contact (C24).
    context = None
    if event.context_wamid and contact_id is not None:
        context = sent_to_contact(session, contact_id=contact_id, wamid=event.context_wamid)
    # So is a form: its answer counts only if its token names a form we sent this contact.
    form = ticked = None
    if kind is InboundKind.FLOW and event.reply is not None and contact_id is not None:
        form = _sent_form(session, contact_id, event.reply.flow_token)
        ticked = ticked_in(dict(event.reply.flow_fields)) if form else None
    return Inbound(
        kind=kind,
        wamid=event.wamid,
        timestamp=event.timestamp,
        text=event.content_text,
        reply_id=event.reply_id,
        from_ad=event.from_ad,
        context_wamid=event.context_wamid,
        context_text_version=context.text_version if context else None,
        context_sent_at=context.created_at if context else None,
        in_group=event.group_id is not None,
        edited=event.is_edit,
        form=form,
        form_ticked=ticked,
    )


def _sent_form(session: Session, contact_id: int, token: str | None) -> SentForm | None:
    message = sent_form(session, contact_id=contact_id, token=token)
    if message is None or token is None:
        return None
    return SentForm(
        token=token,
        text=message.text or "",
        text_version=message.text_version,
        sent_at=message.created_at,
        offered=offered_in(message.raw),
        wamid=message.wamid,
        message_id=message.id,
    )


class Responder:
    """The MessageHandler the webhook runs for each new inbound message."""

    def __init__(self, services: Services) -> None:
        self.services = services

    def __call__(
        self,
        session: Session,
        contact: Contact,
        event: InboundMessage,
        *,
        new_contact: bool = False,
        loaded: tuple[DialogueRow, DialogueState] | None = None,
    ) -> None:
        """`new_contact`: created by this transaction, so there is nothing of theirs to read.
        `loaded`: their dialogue state, read with others' since nothing was written about them."""
        row, state = loaded or load_state(session, contact, new=new_contact)
        inbound = to_inbound(session, event, None if new_contact else contact.id)
        result = step(state, inbound, self.services.catalog, event.timestamp)
        self.apply(session, contact, row, result, phone_number_id=event.phone_number_id)
        # The confirmations this message settled (a tap on the double opt-in template): each is
        # settled by its answer unless that answer lost to a newer decision in the ledger.
        answered = state.awaiting_confirmation - result.state.awaiting_confirmation
        settle_answers(
            session,
            contact_id=contact.id,
            answers={c.category: c.granted for c in result.changes if c.category in answered},
        )
        if state.requested is not None and result.state.requested is None:
            confirmed = any(c.source is ConsentSource.WEB for c in result.changes)
            web_optin.settle(session, contact_id=contact.id, confirmed=confirmed)
        # Only a customer's own words in the private chat are marked read.
        if self.services.settings.mark_inbound_read and _readable(event):
            enqueue_read_receipt(session, phone_number_id=event.phone_number_id, wamid=event.wamid)

    def on_preference(
        self,
        session: Session,
        contact: Contact,
        *,
        value: str,
        occurred_at: datetime,
        evidence: dict[str, str],
        phone_number_id: str | None,
    ) -> None:
        """Meta's user_preferences update: marketing stop (or resume, which grants nothing)."""
        row, state = load_state(session, contact)
        result = marketing_preference(
            state, value, self.services.catalog, occurred_at=occurred_at, evidence=evidence
        )
        self.apply(session, contact, row, result, phone_number_id=phone_number_id)

    def apply(
        self,
        session: Session,
        contact: Contact,
        row: DialogueRow,
        result: StepResult,
        *,
        phone_number_id: str | None,
    ) -> None:
        save_result(session, contact, row, result)
        if any(c.granted and c.source is ConsentSource.WHATSAPP for c in result.changes):
            # Only an explicit opt-in on WhatsApp lifts an erasure's suppression (C18), for
            # every number and user id the person has now.
            for identifier in strong_identifiers(contact):
                lift(session, key=self.services.settings.suppression_key, wa_id=identifier)
        sender = phone_number_id or self.services.settings.phone_number_id
        if sender is None:
            return
        # The number when known, else the user id: payloads put that in `recipient` (C27).
        recipient = contact.wa_id or contact.user_id
        for reply in result.replies:
            message_id = new_id()  # a form's token names its own message
            enqueue_message(
                session,
                contact_id=contact.id,
                phone_number_id=sender,
                payload=self._payload(recipient, reply, form_token(message_id)),
                type="interactive" if reply.buttons or reply.form else "text",
                text=reply.shown_text,
                purpose=reply.purpose,
                text_version=reply.text_version,
                message_id=message_id,
            )

    def _payload(self, recipient: str, reply: Reply, token: str) -> dict[str, Any]:
        if reply.form is not None:
            flow_id = self.services.catalog.preferences_flow.flow_id
            assert flow_id is not None, "flows renders a form only when one is published"
            return flow_payload(recipient, reply.body, reply.form, flow_id=flow_id, token=token)
        return _payload(recipient, reply)


def _readable(event: InboundMessage) -> bool:
    return event.group_id is None and event.revoke is None and event.welcome is None


def _payload(recipient: str, reply: Reply) -> dict[str, Any]:
    if reply.menu:
        rows = [(b.id, b.title, None) for b in reply.buttons]
        return list_payload(recipient, reply.body, reply.menu, [(None, rows)])
    if reply.buttons:
        return buttons_payload(recipient, reply.body, [(b.id, b.title) for b in reply.buttons])
    return text_payload(recipient, reply.body)
