"""Parse the raw bytes of a webhook POST into a :class:`WebhookBody`.

Only the envelope can make a whole body unreadable (:class:`PayloadError`): bytes that are not
UTF-8 JSON, a top level that is not an object, an ``object`` other than
``whatsapp_business_account``, an ``entry`` that is not a list. Below that, every problem is
confined to the smallest part it affects and reported as a :class:`MalformedItem` naming its path,
so one bad message never loses the others in a batch of up to 1000. The walk visits each item
once and looks contacts up by dict, so it stays linear in the size of the body.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from bot.meta.envelope import ContactProfile, MetaError, StatusType
from bot.meta.events import (
    InboundMessage,
    MalformedItem,
    OtherChange,
    PreferenceUpdate,
    Status,
    WebhookBody,
)
from bot.meta.readers import ItemError, shown
from bot.meta.storable import (
    JSON_DECODER,
    Unreadable,
    check_contact,
    check_message,
    check_other,
    check_phone_number_id,
    check_preference,
    check_status,
)

OBJECT = "whatsapp_business_account"
HANDLED_FIELDS = frozenset({"messages", "user_preferences"})

# The arrays of events each handled field carries, and the value keys that are plain context.
_EVENT_ARRAYS: dict[str, tuple[str, ...]] = {
    "messages": ("messages", "statuses"),
    "user_preferences": ("user_preferences",),
}
_CONTEXT_KEYS = frozenset({"messaging_product", "metadata", "contacts"})
_STATUSES = frozenset(status.value for status in StatusType)

_ESCAPED_SURROGATE = re.compile(rb"\\u[dD][89abcdefABCDEF]")
_LONE_SURROGATE = re.compile("[\ud800-\udfff]")


class PayloadError(ValueError):
    """The body as a whole is not a WhatsApp Business Account webhook."""


def parse_body(raw: bytes) -> WebhookBody:
    """Every message, status, preference update and other change in ``raw``, in body order."""
    document = _load(raw)
    if not isinstance(document, dict):
        raise PayloadError(f"body is a JSON {type(document).__name__}, expected an object")
    obj = document.get("object")
    entries = document.get("entry")
    # A number JSON cannot spell spoils only the item it sits in; in the envelope, everything.
    for part in (obj, *(entries if isinstance(entries, list) else [entries])):
        if isinstance(part, Unreadable):
            raise PayloadError(f"body is not JSON: {part!r} is not a JSON number")
    if obj != OBJECT:
        raise PayloadError(f"'object' is {shown(obj)}, expected {OBJECT!r}")
    if not isinstance(entries, list):
        raise PayloadError("'entry' is missing or not a list")

    walk = _Walk()
    for i, entry in enumerate(entries):
        walk.entry(entry, f"entry[{i}]")
    return WebhookBody(
        object=obj,
        messages=tuple(walk.messages),
        statuses=tuple(walk.statuses),
        preferences=tuple(walk.preferences),
        others=tuple(walk.others),
        malformed=tuple(walk.malformed),
        contacts=tuple(walk.contacts.values()),
    )


def _load(raw: bytes) -> Any:
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise PayloadError(f"body is not UTF-8: {exc}") from None
    try:
        document = JSON_DECODER.decode(text)
    except (ValueError, RecursionError) as exc:
        raise PayloadError(f"body is not JSON: {exc}") from None
    # JSON lets `\ud83d` stand alone; such a string could not be stored or re-encoded as UTF-8.
    if _ESCAPED_SURROGATE.search(raw):
        try:
            document = _replace_lone_surrogates(document)
        except RecursionError:
            raise PayloadError("body is nested too deeply") from None
    return document


def _replace_lone_surrogates(value: Any) -> Any:
    # json.loads has already joined valid pairs, so any surrogate left is a lone one.
    if isinstance(value, str):
        return _LONE_SURROGATE.sub("\ufffd", value)
    if isinstance(value, list):
        return [_replace_lone_surrogates(item) for item in value]
    if isinstance(value, dict):
        return {
            _replace_lone_surrogates(key): _replace_lone_surrogates(item)
            for key, item in value.items()
        }
    return value


def _id(value: object) -> str | None:
    if isinstance(value, str) and value:
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def _part_of(change: dict[str, Any], key: str, items: Any) -> dict[str, Any]:
    """A change holding only ``key`` beside the value's context, so it reads on its own."""
    value = {k: v for k, v in change["value"].items() if k in _CONTEXT_KEYS and k != "contacts"}
    value[key] = items
    return {"field": change["field"], "value": value}


class _Walk:
    """Accumulates events while visiting entries and changes."""

    def __init__(self) -> None:
        self.messages: list[InboundMessage] = []
        self.statuses: list[Status] = []
        self.preferences: list[PreferenceUpdate] = []
        self.others: list[OtherChange] = []
        self.malformed: list[MalformedItem] = []
        self.contacts: dict[str, ContactProfile] = {}
        # Our numbers' ids already found storable: a body names one or two, in every change.
        self.numbers: set[str] = set()

    def bad(
        self, path: str, problem: str, raw: Any, *, entry_id: str | None, field: str | None
    ) -> None:
        self.malformed.append(
            MalformedItem(
                entry_id=entry_id, field=field, path=path, problem=f"{path}: {problem}", raw=raw
            )
        )

    def other(self, other: OtherChange) -> None:
        """Keep an unhandled part as it is, or for support when it cannot be stored so."""
        try:
            check_other(other)
        except ItemError as exc:
            self.bad(other.path, str(exc), other.raw, entry_id=other.entry_id, field=other.field)
            return
        self.others.append(other)

    def entry(self, entry: Any, path: str) -> None:
        if not isinstance(entry, dict):
            self.bad(path, "is not an object", entry, entry_id=None, field=None)
            return
        entry_id = _id(entry.get("id"))
        changes = entry.get("changes")
        if not isinstance(changes, list):
            problem = "missing 'changes'" if changes is None else "'changes' is not a list"
            self.bad(path, problem, entry, entry_id=entry_id, field=None)
            return
        for j, change in enumerate(changes):
            self.change(change, f"{path}.changes[{j}]", entry_id)

    def change(self, change: Any, path: str, entry_id: str | None) -> None:
        if not isinstance(change, dict):
            self.bad(path, "is not an object", change, entry_id=entry_id, field=None)
            return
        field = change.get("field")
        if not isinstance(field, str) or not field:
            self.bad(path, "missing 'field'", change, entry_id=entry_id, field=None)
            return
        value = change.get("value")
        if field not in HANDLED_FIELDS:
            errors = MetaError.from_list(value.get("errors")) if isinstance(value, dict) else ()
            self.other(
                OtherChange(
                    entry_id=entry_id,
                    field=field,
                    path=path,
                    note=f"field '{field}' is not handled",
                    errors=errors,
                    raw=change,
                )
            )
            return
        if not isinstance(value, dict):
            self.bad(f"{path}.value", "is not an object", change, entry_id=entry_id, field=field)
            return
        path = f"{path}.value"
        metadata = value.get("metadata")
        if not isinstance(metadata, dict):
            metadata = {}
        phone_number_id = _id(metadata.get("phone_number_id"))
        try:
            if phone_number_id is None:
                raise ItemError("missing 'phone_number_id'")
            if phone_number_id not in self.numbers:
                check_phone_number_id(phone_number_id)
                self.numbers.add(phone_number_id)
        except ItemError as exc:
            # Without it no reply could go out from the right number: the change is unreadable.
            self.bad(f"{path}.metadata", str(exc), change, entry_id=entry_id, field=field)
            return
        display = _id(metadata.get("display_phone_number"))
        contacts = self.change_contacts(value.get("contacts"), f"{path}.contacts", entry_id, field)

        arrays = _EVENT_ARRAYS[field]
        for key, items in value.items():
            if key in _CONTEXT_KEYS:
                continue
            if key not in arrays:
                self.other(
                    OtherChange(
                        entry_id=entry_id,
                        field=field,
                        path=f"{path}.{key}",
                        note=f"key '{key}' is not handled in a '{field}' change",
                        errors=MetaError.from_list(items) if key == "errors" else (),
                        raw=_part_of(change, key, items),
                    )
                )
                continue
            if not isinstance(items, list):
                self.bad(f"{path}.{key}", "is not a list", items, entry_id=entry_id, field=field)
                continue
            for k, item in enumerate(items):
                item_path = f"{path}.{key}[{k}]"
                if not isinstance(item, dict):
                    self.bad(item_path, "is not an object", item, entry_id=entry_id, field=field)
                    continue
                try:
                    self.event(
                        key,
                        item,
                        path=item_path,
                        entry_id=entry_id,
                        change=change,
                        phone_number_id=phone_number_id,
                        display=display,
                        contacts=contacts,
                    )
                except ItemError as exc:
                    self.bad(item_path, str(exc), item, entry_id=entry_id, field=field)

    def event(
        self,
        key: str,
        item: dict[str, Any],
        *,
        path: str,
        entry_id: str | None,
        change: dict[str, Any],
        phone_number_id: str,
        display: str | None,
        contacts: Mapping[str, ContactProfile],
    ) -> None:
        if key == "messages":
            message = InboundMessage.from_payload(
                item,
                phone_number_id=phone_number_id,
                display_phone_number=display,
                contacts=contacts,
            )
            check_message(message)
            self.messages.append(message)
        elif key == "statuses":
            status = item.get("status")
            if isinstance(status, str) and status and status not in _STATUSES:
                # A status Meta added after this code: kept and acknowledged, never applied.
                self.other(
                    OtherChange(
                        entry_id=entry_id,
                        field="messages",
                        path=path,
                        note=f"unknown status '{status}'",
                        errors=MetaError.from_list(item.get("errors")),
                        raw=_part_of(change, key, [item]),
                    )
                )
                return
            status_event = Status.from_payload(item, phone_number_id=phone_number_id)
            check_status(status_event)
            self.statuses.append(status_event)
        else:
            preference = PreferenceUpdate.from_payload(
                item, phone_number_id=phone_number_id, contacts=contacts
            )
            check_preference(preference)
            self.preferences.append(preference)

    def change_contacts(
        self, items: Any, path: str, entry_id: str | None, field: str
    ) -> dict[str, ContactProfile]:
        """This change's contacts by wa_id and by user_id; also gathered body-wide, by key."""
        index: dict[str, ContactProfile] = {}
        if items is None:
            return index
        if not isinstance(items, list):
            self.bad(path, "is not a list", items, entry_id=entry_id, field=field)
            return index
        for k, item in enumerate(items):
            if not isinstance(item, dict):
                self.bad(f"{path}[{k}]", "is not an object", item, entry_id=entry_id, field=field)
                continue
            try:
                contact = ContactProfile.from_payload(item)
                check_contact(contact)
            except ItemError as exc:
                self.bad(f"{path}[{k}]", str(exc), item, entry_id=entry_id, field=field)
                continue
            for identifier in (contact.wa_id, contact.user_id):
                if identifier:
                    index.setdefault(identifier, contact)
            seen = self.contacts.get(contact.key)
            self.contacts[contact.key] = seen.merged(contact) if seen else contact
        return index
