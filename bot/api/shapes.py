"""Output shapes of the business API, built from stored rows."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from flows.catalog import Catalog
from storage.models import Consent, ConsentEvent, Contact, IdentityChange, Message


def iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


def contact_shape(
    contact: Contact, consents: dict[str, Consent], catalog: Catalog, *, suppressed: bool
) -> dict[str, Any]:
    shown: dict[str, Any] = {}
    for category_id in catalog.category_ids:
        row = consents.get(category_id)
        shown[category_id] = {
            "granted": bool(row and row.granted),
            "source": row.source if row else None,
            "updated_at": iso(row.updated_at) if row else None,
        }
    return {
        "wa_id": contact.wa_id,
        "user_id": contact.user_id,
        "parent_user_id": contact.parent_user_id,
        "name": contact.name,
        "username": contact.username,
        "language": contact.language,
        "created_at": iso(contact.created_at),
        "first_inbound_at": iso(contact.first_inbound_at),
        "last_inbound_at": iso(contact.last_inbound_at),
        "marketing_held_until": iso(contact.marketing_held_until),
        "suppressed": suppressed,
        "consents": shown,
    }


def message_shape(message: Message) -> dict[str, Any]:
    error = None
    if message.error_code is not None or message.error_title:
        error = {"code": message.error_code, "title": message.error_title}
    return {
        "id": message.id,
        "wamid": message.wamid,
        "direction": message.direction,
        "type": message.type,
        "text": message.text,
        "status": message.status,
        "timestamp": iso(message.meta_timestamp),
        "error": error,
    }


def consent_event_shape(event: ConsentEvent) -> dict[str, Any]:
    return {
        "category": event.category,
        "granted": event.granted,
        "source": event.source,
        "occurred_at": iso(event.occurred_at),
        "recorded_at": iso(event.recorded_at),
        "text_version": event.text_version,
        "text": event.text,
        "evidence": event.evidence or {},
    }


def identity_change_shape(change: IdentityChange) -> dict[str, Any]:
    """One change of a number, user id or username, as Meta reported it: held in clear while the
    contact exists (it is theirs to see), erased with it, after which only keyed hashes remain."""
    return {
        "field": change.field,
        "previous": change.previous,
        "current": change.current,
        "reason": change.reason,
        "occurred_at": iso(change.occurred_at),
        "recorded_at": iso(change.recorded_at),
        "evidence": {
            key: value for key, value in (("wamid", change.wamid), ("notice", change.note)) if value
        },
    }
