"""What an inbound message amounts to: our button ids, the signals, the contact's language."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace
from enum import StrEnum
from types import MappingProxyType

from flows import texts
from flows.catalog import Catalog
from flows.entry import entry_point_in
from flows.keywords import Intent, match_keyword
from flows.model import DialogueState, Inbound, InboundKind
from flows.normalise import is_arabic, normalise
from flows.stop_words import Reading, read_stop

# The consent prompt's buttons (CONTRACT section 4).
OPTIN_YES = "optin:yes"
OPTIN_CHOOSE = "optin:choose"
OPTIN_NO = "optin:no"

# Payloads of the double opt-in template's quick-reply buttons (index 0 and 1): the person
# confirms, or declines, consent the business collected off WhatsApp.
DOI_YES = "doi:yes"
DOI_NO = "doi:no"

# The quick-reply button Meta adds to marketing templates; a tap is Meta's opt-out (C13).
META_STOP_PROMOTIONS = "stop promotions"

# The one-tap question when a message may be asking to stop (C21): stopask:all,
# stopask:<category_id>, stopask:keep. "all" and "keep" win over categories of those names.
STOPASK_ALL = "stopask:all"
STOPASK_KEEP = "stopask:keep"


def category_button_id(category_id: str, answer: bool) -> str:
    return f"cat:{category_id}:{'yes' if answer else 'no'}"


def stopask_button_id(category_id: str) -> str:
    return f"stopask:{category_id}"


class Signal(StrEnum):
    """What an inbound message amounts to: the input side of the transition table."""

    # Keywords, the whole message (C05, C06).
    STOP_ALL = "stop_all"
    STOP_CATEGORY = "stop_category"
    START = "start"
    HELP = "help"
    PREFERENCES = "preferences"
    LANGUAGE = "language"
    # Our buttons.
    ALL_YES = OPTIN_YES
    CHOOSE = OPTIN_CHOOSE
    ALL_NO = OPTIN_NO
    CATEGORY_YES = "cat:yes"
    CATEGORY_NO = "cat:no"
    # The double opt-in template's quick replies.
    DOI_YES = DOI_YES
    DOI_NO = DOI_NO
    # Meta's "Stop promotions" quick reply on a marketing template.
    STOP_PROMOTIONS = "stop_promotions"
    # Own words that may be asking to stop (clear ones are STOP_ALL / STOP_CATEGORY), and the
    # taps on the question it gets (C21).
    MAYBE_STOP = "maybe_stop"
    STOPASK_ALL = STOPASK_ALL
    STOPASK_CATEGORY = "stopask:category"
    STOPASK_KEEP = STOPASK_KEEP
    # Typed answers: they mean something only while a question is showing.
    YES = "typed_yes"
    NO = "typed_no"
    # Anything not honoured from a click-to-WhatsApp ad (C03): never consent, whatever it says.
    FROM_AD = "from_ad"
    # The customer opened the chat for the first time: the moment to ask (C33).
    WELCOME = "welcome"
    # The answer to our preferences form (a WhatsApp Flow), found among the forms we sent them.
    FORM_ANSWER = "form_answer"
    # A link's or QR code's prefilled text (flows.entry): a first contact, never consent.
    ENTRY = "entry"
    # Anything else.
    OTHER = "other"  # text, or a button that is not ours
    UNREADABLE = "unreadable"  # media, unsupported
    # Not an answer to anything: a reaction, a deletion, a system notice, and from a group or
    # an edit anything that does not withdraw (C31-C33).
    IGNORED = "ignored"


# What a message from an ad may still mean: the keywords, and the taps that only withdraw.
# None of them grants anything, so C03 has nothing to guard against.
HONOURED_FROM_AD = frozenset(
    {
        Signal.STOP_ALL,
        Signal.STOP_CATEGORY,
        Signal.START,
        Signal.HELP,
        Signal.PREFERENCES,
        Signal.LANGUAGE,
        Signal.STOP_PROMOTIONS,
        Signal.DOI_NO,
        Signal.MAYBE_STOP,
        Signal.STOPASK_ALL,
        Signal.STOPASK_CATEGORY,
        Signal.STOPASK_KEEP,
    }
)

# What a group message or an edit may still mean: a withdrawal, never a grant (C31, C32).
WITHDRAWALS = frozenset({Signal.STOP_ALL, Signal.STOP_CATEGORY, Signal.STOP_PROMOTIONS})

_INTENT_SIGNALS: Mapping[Intent, Signal] = MappingProxyType(
    {
        Intent.STOP_ALL: Signal.STOP_ALL,
        Intent.STOP_CATEGORY: Signal.STOP_CATEGORY,
        Intent.START: Signal.START,
        Intent.HELP: Signal.HELP,
        Intent.PREFERENCES: Signal.PREFERENCES,
        Intent.LANGUAGE: Signal.LANGUAGE,
        Intent.YES: Signal.YES,
        Intent.NO: Signal.NO,
    }
)
_BUTTON_SIGNALS: Mapping[str, Signal] = MappingProxyType(
    {
        OPTIN_YES: Signal.ALL_YES,
        OPTIN_CHOOSE: Signal.CHOOSE,
        OPTIN_NO: Signal.ALL_NO,
        DOI_YES: Signal.DOI_YES,
        DOI_NO: Signal.DOI_NO,
        STOPASK_ALL: Signal.STOPASK_ALL,
        STOPASK_KEEP: Signal.STOPASK_KEEP,
    }
)
_ANSWERS = frozenset({Intent.YES, Intent.NO})
_UNREADABLE_KINDS = frozenset({InboundKind.MEDIA, InboundKind.UNSUPPORTED})
_IGNORED_KINDS = frozenset({InboundKind.REACTION, InboundKind.NOTICE})


def classify(event: Inbound, catalog: Catalog) -> tuple[Signal, str | None, str | None]:
    """(signal, category id, language) for one message; from an ad, only what is honoured."""
    signal, category_id, language = _recognise(event, catalog)
    if (event.in_group or event.edited) and signal not in WITHDRAWALS:
        return Signal.IGNORED, None, None
    if event.from_ad and signal not in HONOURED_FROM_AD:
        return Signal.FROM_AD, None, None
    return signal, category_id, language


def _recognise(event: Inbound, catalog: Catalog) -> tuple[Signal, str | None, str | None]:
    """Meta's opt-out button first, then our button ids, then keywords, then own words."""
    if event.kind in _IGNORED_KINDS:
        return Signal.IGNORED, None, None
    if event.kind is InboundKind.FLOW:
        # Another Flow's answer is the business's form, kept for it: not an answer to us.
        ours = event.form is not None and event.form_ticked is not None
        return (Signal.FORM_ANSWER if ours else Signal.IGNORED), None, None
    if event.kind is InboundKind.WELCOME:
        return Signal.WELCOME, None, None
    if event.kind in _UNREADABLE_KINDS:
        return Signal.UNREADABLE, None, None
    # Only as a tap: typed, the same words are the customer's own "STOP promotions" (C08).
    if event.kind is InboundKind.BUTTON and _is_stop_promotions(event):
        return Signal.STOP_PROMOTIONS, None, None
    reply_id = event.reply_id or ""
    if reply_id in _BUTTON_SIGNALS:
        return _BUTTON_SIGNALS[reply_id], None, None
    prefix, _, rest = reply_id.partition(":")
    category_id, _, answer = rest.rpartition(":")
    if prefix == "cat" and answer in ("yes", "no") and catalog.category(category_id):
        signal = Signal.CATEGORY_YES if answer == "yes" else Signal.CATEGORY_NO
        return signal, category_id, None
    if prefix == "stopask" and catalog.category(rest):
        return Signal.STOPASK_CATEGORY, rest, None
    # A button that is not ours (a template quick reply) may still carry a keyword. A link's
    # prefilled text is never an answer to a question, however it has been edited.
    from_link = event.kind is InboundKind.TEXT and entry_point_in(event.text) is not None
    candidates = [c for c in (event.text, event.reply_id) if c]
    for candidate in candidates:
        match = match_keyword(candidate, catalog)
        if match is not None and not (from_link and match.intent in _ANSWERS):
            return _INTENT_SIGNALS[match.intent], match.category_id, match.language
    for candidate in candidates:
        signal, category_id = _own_words(candidate, catalog)
        if signal is not Signal.OTHER:
            return signal, category_id, None
    if from_link:
        return Signal.ENTRY, None, None
    return Signal.OTHER, None, None


def _own_words(text: str, catalog: Catalog) -> tuple[Signal, str | None]:
    """C21: a clear stop is STOP, or STOP <category> when it names exactly one; one naming
    several, or one that may be asking, gets the question."""
    reading = read_stop(text, catalog)
    named = reading.categories
    if reading.reading is Reading.STOP:
        if len(named) == 1:
            return Signal.STOP_CATEGORY, named[0]
        if not named or set(named) == set(catalog.category_ids):
            return Signal.STOP_ALL, None
        return Signal.MAYBE_STOP, None
    if reading.reading is Reading.ASK:
        return Signal.MAYBE_STOP, named[0] if len(named) == 1 else None
    return Signal.OTHER, None


def _is_stop_promotions(event: Inbound) -> bool:
    return normalise(event.reply_id or event.text or "") == META_STOP_PROMOTIONS


# ---------------------------------------------------------------------------------------------
# The contact's language (C11).


def usable_languages(catalog: Catalog) -> tuple[str, ...]:
    """The company's languages we have texts for, the default first."""
    usable = tuple(lang for lang in catalog.company.languages if lang in texts.LANGUAGES)
    return usable or ("en",)


def usable_language(catalog: Catalog, language: str | None) -> str:
    usable = usable_languages(catalog)
    return language if language in usable else usable[0]


def contact_language(
    state: DialogueState, event: Inbound, catalog: Catalog
) -> tuple[str, DialogueState]:
    """C11: the chosen language; else the language of what they type (Arabic script → Arabic,
    other letters → the default); else the last one seen; else the default. A keyword typed in
    Latin letters says nothing about their language: STOP is STOP on an Arabic keyboard too."""
    usable = usable_languages(catalog)
    if state.language in usable and state.language_chosen:
        return state.language, state
    typed = event.text if event.kind is InboundKind.TEXT else None
    if typed and state.language in usable and _latin_keyword(typed, catalog):
        return state.language, state
    if typed and any(ch.isalpha() for ch in typed):
        detected = "ar" if "ar" in usable and is_arabic(typed) else usable[0]
        return detected, replace(state, language=detected)
    if state.language in usable:
        return state.language, state
    return usable[0], state


def _latin_keyword(typed: str, catalog: Catalog) -> bool:
    match = match_keyword(typed, catalog)
    return match is not None and match.intent is not Intent.LANGUAGE and not is_arabic(typed)
