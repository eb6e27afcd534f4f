"""One way to find the contact a URL names, for every route: as stored (a wa_id or a user id)
or as a phone number in any usual spelling ("+971 50 123 4567" finds wa_id 971501234567)."""

from __future__ import annotations

from sqlmodel import Session

from bot.api.errors import ApiError
from bot.api.validation import path_keys
from storage.contacts import find_contact
from storage.models import Contact
from storage.suppression import is_suppressed


def contact_named(session: Session, key: str) -> Contact | None:
    for candidate in path_keys(key):
        contact = find_contact(session, key=candidate)
        if contact is not None:
            return contact
    return None


def named_is_suppressed(session: Session, key: str, *, suppression_key: bytes) -> bool:
    return any(
        is_suppressed(session, key=suppression_key, wa_id=candidate) for candidate in path_keys(key)
    )


def contact_or_404(session: Session, key: str, *, suppression_key: bytes) -> Contact:
    """The contact, or a 404 that says whether it was erased (only its suppression remains)."""
    contact = contact_named(session, key)
    if contact is not None:
        return contact
    if named_is_suppressed(session, key, suppression_key=suppression_key):
        raise ApiError(
            404,
            "not_found",
            "no data is held on this contact: it was erased, and only its suppression entry "
            "(a keyed hash of the number) remains",
        )
    raise ApiError(404, "not_found", f"no contact with wa_id {key[:64]}")
