"""What Meta's refusal of one of our messages means for the person, whether the send itself was
answered with the error or a `failed` status reported it later (Meta does both).

131050, the person stopped marketing messages: every marketing category is withdrawn with source
`meta` (C13). 131049, Meta's per-user marketing limit: no marketing message to that person for a
day (META.md: do not retry within 24 h).
"""

from __future__ import annotations

import logging
from datetime import datetime

from sqlmodel import Session

from bot.graph.errors import MARKETING_LIMIT_CODE, MARKETING_OPT_OUT_CODE
from bot.wiring.logmask import mask_recipient
from flows.catalog import Catalog
from flows.dialogue import meta_refusal
from flows.policy import MARKETING_HOLD
from storage.contacts import contact_address, hold_marketing, lock_contact_by_id
from storage.dialogue_state import load_state, save_result

log = logging.getLogger(__name__)


def apply_refusal(
    session: Session,
    catalog: Catalog,
    *,
    contact_id: int,
    code: int | None,
    message_id: str | None,
    occurred_at: datetime,
    wamid: str | None = None,
) -> bool:
    """Record what Meta's error code says about the person, in the caller's transaction;
    whether it said anything (other codes concern only the message)."""
    if code not in (MARKETING_OPT_OUT_CODE, MARKETING_LIMIT_CODE):
        return False
    contact = lock_contact_by_id(session, contact_id)  # serialised with the dialogue's changes
    if contact is None:
        return False  # erased meanwhile: nothing left to record
    if code == MARKETING_LIMIT_CODE:
        hold_marketing(session, contact_id=contact_id, until=occurred_at + MARKETING_HOLD)
        log.info("marketing to %s held for 24 h (131049)", mask_recipient(contact_address(contact)))
        return True
    evidence = {"error_code": str(code), "message_id": message_id or ""}
    if wamid:
        evidence["wamid"] = wamid  # reported by a failed status of this message
    # Through the dialogue, so that its stage follows the consent withdrawn (C13).
    row, state = load_state(session, contact)
    result = meta_refusal(state, catalog, occurred_at, evidence)
    save_result(session, contact, row, result)
    withdrawn = [change.category for change in result.changes]
    log.info(
        "marketing opt-out of %s reported by Meta (131050): withdrew %s",
        mask_recipient(contact_address(contact)),
        ", ".join(withdrawn) or "nothing (none was granted)",
    )
    return True
