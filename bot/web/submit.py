"""A choice made on the hosted page, recorded as pending and the confirmation template queued:
the one place the page writes, in one transaction with the contact locked."""

from __future__ import annotations

import logging
from dataclasses import dataclass

from sqlmodel import Session

from bot.intake import enqueue_confirmation
from bot.web.wording import Page
from bot.wiring.logmask import mask_number
from bot.wiring.services import Services
from storage import web_optin
from storage.contacts import find_contact, lock_contact
from storage.identity import strong_identifiers
from storage.suppression import suppressed_any

log = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Submission:
    wa_id: str
    categories: tuple[str, ...]
    page: Page
    entry_point: str | None
    client: str  # keyed hash of the client's address


def record_choice(session: Session, app_services: Services, choice: Submission) -> bool:
    """Pending until the doi:yes tap; whether a template was queued for it now.

    An erased number is left alone (C18): only the person's own opt-in on WhatsApp brings it
    back, and the page answers alike so that it tells nobody which numbers were erased.
    """
    key = app_services.settings.suppression_key
    known = find_contact(session, key=choice.wa_id)
    identifiers = (choice.wa_id, *(strong_identifiers(known) if known else ()))
    if suppressed_any(session, key=key, identifiers=identifiers):
        log.info("web opt-in for %s ignored: suppressed", mask_number(choice.wa_id))
        return False
    contact = lock_contact(session, wa_id=choice.wa_id, user_id=None)
    assert contact.id is not None
    page = choice.page
    submitted = web_optin.submit(
        session,
        contact_id=contact.id,
        categories=list(choice.categories),
        language=page.language,
        text=page.text,
        text_version=page.version,
        evidence={
            "entry_point": choice.entry_point or "direct",
            "client": choice.client,
            "page_language": page.language,
        },
    )
    if submitted.send_template:
        assert contact.wa_id is not None
        enqueue_confirmation(session, app_services, contact.id, contact.wa_id)
    log.info(
        "web opt-in for %s (%s) from %s: %s",
        mask_number(choice.wa_id),
        ",".join(choice.categories),
        choice.entry_point or "direct",
        "confirmation queued" if submitted.send_template else "confirmation already sent today",
    )
    return submitted.send_template
