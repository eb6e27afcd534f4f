"""Parsing and checking of request bodies: a field at fault is a 422 whose message names it."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import phonenumbers
from flask import request

from bot.api.errors import ApiError
from bot.api.phone import plain_wa_id
from bot.graph.payloads import MessageLimitError, template_payload, text_payload
from flows.catalog import Catalog
from flows.policy import RECORDABLE_SOURCES, ConsentSource
from storage import limits
from storage.types import utcnow

# Where consent can have been collected through this API: Meta's marketing opt-out is Meta's to
# report, and an ad is never consent (C03).
CONSENT_SOURCES = tuple(source.value for source in RECORDABLE_SOURCES)
TEXT_MAX = limits.CONSENT_TEXT
# Meta's limits on a template's name and on a language code (en_US, zh_Hant_HK).
TEMPLATE_NAME_MAX = 512
EVIDENCE_MAX_BYTES = 16 * 1024
CLOCK_SKEW = timedelta(minutes=5)  # a collected_at slightly ahead of our clock is accepted
NUMBER_SHAPE = re.compile(r"\+?[0-9][0-9 ()\-.]{4,30}")
SEPARATORS = str.maketrans("", "", " ()-.")
# Meta's business-scoped user id: a country code, a dot ("ENT." next for a parent id), then up
# to 128 letters and digits, e.g. "US.13491208655302741918" (META.md).
USER_ID_SHAPE = re.compile(r"[A-Z]{2}\.(?:ENT\.)?[A-Za-z0-9]{1,128}")
# RFC 3339 (JSON Schema's date-time), with the zone optional so that a missing one is named.
TIMESTAMP_SHAPE = re.compile(
    r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(?:\.\d{1,6})?(?P<zone>[Zz]|[+-]\d{2}:\d{2})?",
    re.ASCII,
)
# JavaScript's \s, which the OpenAPI description's patterns use: "blank" means the same here.
BLANK = re.compile("[\t\n\v\f\r \u00a0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000\ufeff]*")


def is_blank(value: str) -> bool:
    return BLANK.fullmatch(value) is not None


def invalid(field_name: str, message: str, code: str = "invalid_field") -> ApiError:
    return ApiError(422, code, f"{field_name}: {message}")


# Characters no database column can keep: NUL (PostgreSQL text) and lone UTF-16 surrogates
# (not encodable as UTF-8 at all).
UNSTORABLE = re.compile("[\x00\ud800-\udfff]")


def json_object() -> dict[str, Any]:
    """The request body as a JSON object; anything else is refused before any field is read."""
    if not request.is_json:
        raise ApiError(415, "unsupported_media_type", "send the body as application/json")
    try:
        body = json.loads(request.get_data(cache=True), parse_constant=_not_a_json_number)
    except _NotJson as exc:
        raise ApiError(422, "invalid_json", str(exc)) from None
    except RecursionError:
        raise ApiError(400, "invalid_json", "the body is nested too deeply to read") from None
    except ValueError:
        raise ApiError(
            400, "invalid_json", "the body must be a JSON object; it could not be parsed"
        ) from None
    if not isinstance(body, dict):
        raise ApiError(422, "invalid_body", "the body must be a JSON object")
    _refuse_unstorable_text(body)
    return body


class _NotJson(ValueError):
    pass


def _not_a_json_number(literal: str) -> None:
    raise _NotJson(f"{literal} is not a JSON number (RFC 8259); send a number or a string")


def _refuse_unstorable_text(body: dict[str, Any]) -> None:
    """Every string, keys included, must be storable: named by its path when it is not."""
    pending: list[tuple[str, Any]] = [("", body)]
    while pending:
        path, value = pending.pop()
        if isinstance(value, dict):
            for key, item in value.items():
                where = f"{path}.{key}" if path else str(key)
                if UNSTORABLE.search(key):
                    raise invalid(path or "body", "a key holds a NUL or a lone surrogate")
                pending.append((where, item))
        elif isinstance(value, list):
            pending.extend((f"{path}[{index}]", item) for index, item in enumerate(value))
        elif isinstance(value, str) and UNSTORABLE.search(value):
            raise invalid(path, "holds a NUL character or a lone surrogate, which cannot be stored")


def wa_id_from(value: Any, field_name: str, *, known: Callable[[str], bool] | None = None) -> str:
    """A phone number in any common spelling, as a wa_id: E.164 digits without the '+'.

    "+971 50 123 4567", "971501234567" and "+1 650-555-1234" are accepted. A number that
    phonenumbers does not consider valid is still accepted when `known` says WhatsApp already
    reported it as a contact's wa_id (new ranges reach WhatsApp before the library).
    """
    # Blank is checked only where it can be: a number's first character never is.
    if not isinstance(value, str) or (
        value[:1] != "+" and not value[:1].isdigit() and is_blank(value)
    ):
        raise invalid(
            field_name, "a phone number in international format is required", "invalid_number"
        )
    if len(value) > limits.WA_ID:  # no spelling of a number is longer than the column keeping it
        raise invalid(field_name, f"must be at most {limits.WA_ID} characters", "invalid_number")
    spelled = value.strip(" \t")
    if spelled.startswith("00"):
        spelled = "+" + spelled[2:]
    if not NUMBER_SHAPE.fullmatch(spelled):
        raise invalid(
            field_name,
            "not a phone number: use international format, e.g. +971501234567",
            "invalid_number",
        )
    if not spelled.startswith("+"):
        spelled = "+" + spelled
    # The spaces, dashes, dots and brackets this shape allows are all phonenumbers drops from a
    # number written with its country code: the digits alone parse the same, faster.
    digits = spelled[1:].translate(SEPARATORS)
    if digits.isdigit() and (plain := plain_wa_id(digits)) is not None:
        return plain  # the library's own answer, without its parser (bot.api.phone)
    try:
        number = phonenumbers.parse(spelled, None)
    except phonenumbers.NumberParseException:
        number = None
    if number is None or not phonenumbers.is_possible_number(number):
        raise invalid(
            field_name,
            "not a possible phone number: include the country code, e.g. +971501234567",
            "invalid_number",
        )
    wa_id = phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)[1:]
    if not phonenumbers.is_valid_number(number) and not (known and known(wa_id)):
        raise invalid(field_name, "not a valid phone number for its country code", "invalid_number")
    return wa_id


def contact_key_from(
    value: Any, field_name: str, *, known: Callable[[str], bool] | None = None
) -> str:
    """How the API names a person: a business-scoped user id, exactly as Meta gave it, or a phone
    number in any common spelling (as its wa_id, see wa_id_from), the same on every route."""
    # A user id starts with a letter: a number is not matched against its shape.
    if (
        isinstance(value, str)
        and not value[:1].isdigit()
        and USER_ID_SHAPE.fullmatch(value.strip(" \t"))
    ):
        if len(value) > limits.USER_ID:  # as long as the column keeping it, spaces and all
            raise invalid(field_name, f"must be at most {limits.USER_ID} characters")
        return value.strip(" \t")
    return wa_id_from(value, field_name, known=known)


def is_parent_user_id(key: str) -> bool:
    """A parent user id names a person across portfolios; nobody is reached or created by it."""
    return key[2:7] == ".ENT."


def _string(body: dict[str, Any], name: str, *, max_length: int, label: str | None = None) -> str:
    label = label or name
    value = body.get(name)
    if value is None:
        raise invalid(label, "is required")
    if not isinstance(value, str):
        raise invalid(label, "must be a string")
    if is_blank(value):
        raise invalid(label, "must not be empty")
    if len(value) > max_length:
        raise invalid(label, f"must be at most {max_length} characters")
    return value


def _category(value: Any, field_name: str, catalog: Catalog) -> str:
    if not isinstance(value, str):
        raise invalid(field_name, "must be a category id (a string)")
    if catalog.category(value) is None:
        raise invalid(
            field_name,
            f"unknown category {value[:40]!r}; configured: {', '.join(catalog.category_ids)}",
            "unknown_category",
        )
    return value


def timestamp_from(value: Any, field_name: str) -> datetime:
    if not isinstance(value, str):
        raise invalid(
            field_name, "an ISO 8601 timestamp with a zone is required", "invalid_timestamp"
        )
    shape = TIMESTAMP_SHAPE.fullmatch(value)
    if shape is not None and shape.group("zone") is None:
        raise invalid(
            field_name,
            "needs a zone (Z or an offset such as +04:00): without one the moment is ambiguous",
            "invalid_timestamp",
        )
    try:
        if shape is None:
            raise ValueError(value)
        parsed = datetime.fromisoformat(value.upper())
    except ValueError:
        raise invalid(
            field_name,
            "not an ISO 8601 timestamp, e.g. 2025-01-31T09:30:00+04:00",
            "invalid_timestamp",
        ) from None
    try:
        parsed.astimezone(UTC)  # the calendar's first or last day, shifted by its offset
    except OverflowError:
        raise invalid(
            field_name, "is outside the calendar once in UTC", "invalid_timestamp"
        ) from None
    if parsed > utcnow() + CLOCK_SKEW:
        raise invalid(field_name, "is in the future", "invalid_timestamp")
    return parsed


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentRequest:
    wa_id: str  # a wa_id, or a business-scoped user id
    categories: tuple[str, ...]
    granted: bool
    source: ConsentSource
    collected_at: datetime
    text: str
    evidence: dict[str, Any] = field(default_factory=dict)


def consent_request(
    body: dict[str, Any], catalog: Catalog, *, known: Callable[[str], bool]
) -> ConsentRequest:
    """POST /consents (C16): every field checked, the first problem reported by name."""
    source = body.get("source")
    if source == "ad":
        raise invalid(
            "source",
            "an ad click is never consent (rule C03, WhatsApp Business Messaging Policy): "
            "ask the person explicitly and record that answer instead",
            "ad_is_not_consent",
        )
    if source is None:
        raise invalid("source", "is required")
    if not isinstance(source, str) or source not in CONSENT_SOURCES:
        raise invalid("source", f"must be one of {', '.join(CONSENT_SOURCES)}", "unknown_source")

    wa_id = contact_key_from(body.get("wa_id"), "wa_id", known=known)

    categories = categories_from(body.get("categories"), catalog)

    granted = body.get("granted")
    if not isinstance(granted, bool):
        raise invalid("granted", "must be true (consent given) or false (withdrawn)")

    collected_at = timestamp_from(body.get("collected_at"), "collected_at")
    text = _string(body, "text", max_length=TEXT_MAX)

    evidence = body.get("evidence")
    if evidence is None:
        evidence = {}
    check_evidence(evidence)

    return ConsentRequest(
        wa_id=wa_id,
        categories=categories,
        granted=granted,
        source=ConsentSource(source),
        collected_at=collected_at,
        text=text,
        evidence=evidence,
    )


def categories_from(value: Any, catalog: Catalog) -> tuple[str, ...]:
    """A non-empty list of configured category ids, each once, in the order given."""
    if not isinstance(value, list) or not value:
        raise invalid("categories", "a non-empty list of category ids is required")
    categories: list[str] = []
    for index, item in enumerate(value):
        category = _category(item, f"categories[{index}]", catalog)
        if category not in categories:
            categories.append(category)
    return tuple(categories)


def consent_text_from(value: Any) -> str:
    """The exact wording the person agreed to."""
    return _string({"text": value}, "text", max_length=TEXT_MAX)


def check_evidence(evidence: Any) -> None:
    if not isinstance(evidence, dict):
        raise invalid("evidence", "must be an object (ids, URLs, recording references)")
    if len(json.dumps(evidence, ensure_ascii=False).encode()) > EVIDENCE_MAX_BYTES:
        raise invalid("evidence", f"must be at most {EVIDENCE_MAX_BYTES} bytes as JSON")


@dataclass(frozen=True, slots=True, kw_only=True)
class SendRequest:
    to: str  # a wa_id, or a business-scoped user id; the payload is readdressed once found
    category: str
    payload: dict[str, Any]
    type: str  # "text" | "template"
    text: str | None  # what the conversation log shows for it


def send_request(
    body: dict[str, Any], catalog: Catalog, *, known: Callable[[str], bool]
) -> SendRequest:
    """POST /messages: a free text or a template, its Meta body built and checked against limits."""
    to = contact_key_from(body.get("to"), "to", known=known)
    if "category" not in body or body["category"] is None:
        raise invalid("category", "is required")
    category = _category(body["category"], "category", catalog)

    has_text, has_template = body.get("text") is not None, body.get("template") is not None
    if has_text == has_template:
        raise invalid("text", "send exactly one of text (free form) or template")
    if has_text:
        text = body["text"]
        if not isinstance(text, str):
            raise invalid("text", "must be a string")
        if is_blank(text):
            raise invalid("text", "must not be empty")
        try:
            payload = text_payload(to, text)
        except MessageLimitError as exc:
            raise invalid("text", str(exc), "message_limit") from None
        return SendRequest(to=to, category=category, payload=payload, type="text", text=text)

    template = body["template"]
    if not isinstance(template, dict):
        raise invalid("template", "must be an object {name, language, components}")
    name = _string(template, "name", max_length=TEMPLATE_NAME_MAX, label="template.name")
    language, policy = template_language(template)
    components = template.get("components")
    if components is not None and (
        not isinstance(components, list) or not all(isinstance(c, dict) for c in components)
    ):
        raise invalid("template.components", "must be a list of objects, as Meta documents them")
    try:
        payload = template_payload(to, name, language, components, policy=policy)
    except MessageLimitError as exc:
        raise invalid("template", str(exc), "message_limit") from None
    return SendRequest(
        to=to,
        category=category,
        payload=payload,
        type="template",
        text=f"[template {name} ({language})]",
    )


# Meta's template language codes: "en", "fil", "en_US", "pt_BR", "zh_HK".
TEMPLATE_LANGUAGE = re.compile(r"[a-z]{2,3}(_[A-Z]{2})?")  # as TemplateLanguageCode in openapi.yaml
TEMPLATE_POLICIES = ("deterministic",)  # the only value Meta documents


def template_language(template: dict[str, Any]) -> tuple[str, str | None]:
    """Meta's own `language: {code, policy?}`, as copied from its documentation, or the bare
    code; (code, policy)."""
    value = template.get("language")
    label, policy = "template.language", None
    if isinstance(value, dict):
        label = "template.language.code"
        policy = value.get("policy")
        if policy is not None and policy not in TEMPLATE_POLICIES:
            raise invalid("template.language.policy", "must be deterministic, or left out")
        value = value.get("code")
    if value is None:
        raise invalid(label, "is required")
    if not isinstance(value, str):
        raise invalid(label, "must be a string, or Meta's object {code, policy}")
    if not TEMPLATE_LANGUAGE.fullmatch(value):
        raise invalid(
            label,
            f"{value[:20]!r} is not a language code Meta knows: use one such as en, en_US or pt_BR",
        )
    return value, policy


def category_query(value: str | None, catalog: Catalog) -> str:
    if value is None or value == "":
        raise invalid("category", "the query parameter category is required")
    return _category(value, "category", catalog)


def path_keys(value: str) -> tuple[str, ...]:
    """How a contact in a URL may be named: as stored (a wa_id or user_id) or as a spelled number
    ("+971 50 123 4567" finds wa_id 971501234567)."""
    keys = [value]
    if NUMBER_SHAPE.fullmatch(value.strip()):
        digits = "".join(ch for ch in value if ch.isdigit())
        if digits and digits not in keys:
            keys.append(digits)
    return tuple(keys)
