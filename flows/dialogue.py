"""The consent dialogue: one pure step from (state, inbound message, catalog, now) to what to do.

Nothing here reads a clock, a file or a database: the caller passes `now` and applies the result
(new state, ledger rows, replies) in one transaction.

Decisions worth knowing when reading the ledger:
- A grant is recorded only against a prompt that is live: its wording is the current one (C19) and
  it was shown less than 24 hours before the answer (C02). The row's text is that prompt exactly as
  shown, re-rendered in the language whose version the answer refers to.
- Every answer "no" is recorded, one row per category the question named, even for a category that
  was never granted: it is evidence of the answer. A refusal is honoured even on an outdated
  prompt; the row's text is then the customer's own words, since we cannot vouch for the wording.
- A withdrawal by keyword (STOP, STOP <category>) records the customer's own message as the text,
  and only for categories granted at that moment, so a repeated STOP adds no rows.
- Meta's marketing opt-out records a fixed description of that act (META_OPT_OUT_TEXT).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from enum import StrEnum
from types import MappingProxyType

from flows import texts
from flows.catalog import Catalog
from flows.keywords import Intent, match_keyword
from flows.model import (
    Button,
    DialogueState,
    Inbound,
    InboundKind,
    Reply,
    Stage,
    StepResult,
)
from flows.normalise import is_arabic, normalise
from flows.policy import ConsentChange, ConsentSource
from flows.versioning import text_version

PROMPT_LIFETIME = timedelta(hours=24)  # an answer later than this to a prompt is not consent
MAX_REPROMPTS = 2  # the same question at most twice in a row, then one pointer to HELP
# Meta's timestamps are whole seconds, ours are not: the slack when comparing the two.
CLOCK_SLACK = timedelta(seconds=2)

OPTIN_YES = "optin:yes"
OPTIN_CHOOSE = "optin:choose"
OPTIN_NO = "optin:no"

# The quick-reply button Meta adds to marketing templates; a tap is Meta's opt-out (C13).
META_STOP_PROMOTIONS = "stop promotions"

# The ledger text for Meta's own marketing opt-out: the person answered WhatsApp's UI, not ours.
META_OPT_OUT_TEXT = "WhatsApp marketing messages preference: stop"


def category_button_id(category_id: str, answer: bool) -> str:
    return f"cat:{category_id}:{'yes' if answer else 'no'}"


class Signal(StrEnum):
    """What an inbound message amounts to, once keywords and our button ids are recognised."""

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
    # Typed answers: they mean something only while a question is showing.
    YES = "typed_yes"
    NO = "typed_no"
    # Anything else.
    OTHER = "other"  # text, or a button that is not ours
    UNREADABLE = "unreadable"  # media, reaction, unsupported


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
_OPTIN_SIGNALS: Mapping[str, Signal] = MappingProxyType(
    {OPTIN_YES: Signal.ALL_YES, OPTIN_CHOOSE: Signal.CHOOSE, OPTIN_NO: Signal.ALL_NO}
)
_UNREADABLE_KINDS = frozenset({InboundKind.MEDIA, InboundKind.REACTION, InboundKind.UNSUPPORTED})


@dataclass(frozen=True, slots=True, kw_only=True)
class _Turn:
    """Everything a transition handler needs about the message being answered."""

    state: DialogueState
    event: Inbound
    catalog: Catalog
    now: datetime
    language: str
    signal: Signal
    category_id: str | None = None  # from a cat:<id>:* button or STOP <category>
    switch_to: str | None = None  # from a LANGUAGE keyword


Handler = Callable[[_Turn], StepResult]


# ---------------------------------------------------------------------------------------------
# Rendering: every reply is built here from the catalog and the texts files.


def _usable_languages(catalog: Catalog) -> tuple[str, ...]:
    usable = tuple(lang for lang in catalog.company.languages if lang in texts.LANGUAGES)
    return usable or ("en",)


def _usable(catalog: Catalog, language: str | None) -> str:
    usable = _usable_languages(catalog)
    return language if language in usable else usable[0]


def _category_lines(catalog: Catalog, language: str, ids: Iterable[str] | None = None) -> str:
    wanted = None if ids is None else frozenset(ids)
    return "\n".join(
        texts.text(
            language,
            "category_line",
            title=c.title_in(language),
            description=c.description_in(language),
        )
        for c in catalog.categories
        if wanted is None or c.id in wanted
    )


def render_prompt(catalog: Catalog, language: str) -> Reply:
    """The consent prompt (C01): company, WhatsApp, each category, how to stop; three buttons."""
    language = _usable(catalog, language)
    company = catalog.company
    body = texts.text(
        language,
        "prompt",
        company=company.name,
        categories=_category_lines(catalog, language),
    )
    if company.privacy_url:
        body += "\n\n" + texts.text(language, "privacy", privacy_url=company.privacy_url)
    buttons = (
        Button(id=OPTIN_YES, title=texts.text(language, "button_yes_all")),
        Button(id=OPTIN_CHOOSE, title=texts.text(language, "button_choose")),
        Button(id=OPTIN_NO, title=texts.text(language, "button_no")),
    )
    return Reply(body=body, buttons=buttons, purpose="prompt", language=language)


def current_prompt_version(catalog: Catalog, language: str) -> str:
    return render_prompt(catalog, language).text_version


def render_category_prompt(catalog: Catalog, category_id: str, language: str) -> Reply:
    """The question for one category, with its own yes/no buttons."""
    language = _usable(catalog, language)
    category = catalog.category(category_id)
    if category is None:
        raise KeyError(category_id)
    body = texts.text(
        language,
        "category_prompt",
        company=catalog.company.name,
        title=category.title_in(language),
        description=category.description_in(language),
    )
    buttons = (
        Button(
            id=category_button_id(category_id, True),
            title=texts.text(language, "button_category_yes"),
        ),
        Button(
            id=category_button_id(category_id, False),
            title=texts.text(language, "button_category_no"),
        ),
    )
    return Reply(body=body, buttons=buttons, purpose="category_prompt", language=language)


def _reply(turn: _Turn, key: str, purpose: str, **values: str) -> Reply:
    return Reply(
        body=texts.text(turn.language, key, **values), purpose=purpose, language=turn.language
    )


def _confirmation(turn: _Turn, granted: frozenset[str]) -> Reply:
    return render_confirmation(turn.catalog, turn.language, granted)


def render_confirmation(catalog: Catalog, language: str, granted: frozenset[str]) -> Reply:
    """What the contact now receives and how to stop or change it (also after a double opt-in)."""
    lines = "\n".join(
        texts.text(language, "granted_line", title=c.title_in(language))
        for c in catalog.categories
        if c.id in granted
    )
    return Reply(
        body=texts.text(language, "confirmation", company=catalog.company.name, categories=lines),
        purpose="confirmation",
        language=language,
    )


def _help_reply(turn: _Turn) -> Reply:
    lang, catalog = turn.language, turn.catalog
    # The example is a real category name, so "STOP <example>" as written does stop it.
    example = next((c for c in catalog.categories if c.marketing), catalog.categories[0])
    body = texts.text(
        lang,
        "help",
        company=catalog.company.name,
        support=catalog.company.support,
        categories=_category_lines(catalog, lang),
        example=example.title_in(lang),
    )
    others = [texts.text(o, "language_keyword") for o in _usable_languages(catalog) if o != lang]
    if others:
        body += "\n" + texts.text(lang, "help_language", languages=" / ".join(others))
    return Reply(body=body, purpose="help", language=lang)


def _preferences_reply(turn: _Turn) -> Reply:
    lang = turn.language
    lines = "\n".join(
        texts.text(
            lang,
            "preference_on" if c.id in turn.state.granted else "preference_off",
            title=c.title_in(lang),
        )
        for c in turn.catalog.categories
    )
    body = texts.text(lang, "preferences", company=turn.catalog.company.name, lines=lines)
    # The button starts the one-by-one questions: each answer there is its own explicit act.
    button = Button(id=OPTIN_CHOOSE, title=texts.text(lang, "button_change"))
    return Reply(body=body, buttons=(button,), purpose="preferences", language=lang)


# ---------------------------------------------------------------------------------------------
# Ledger rows and the checks that decide whether an answer is consent.


def _evidence(event: Inbound) -> Mapping[str, str]:
    pairs = (("reply_wamid", event.wamid), ("prompt_wamid", event.context_wamid))
    return {key: value for key, value in pairs if value}


def _own_words(event: Inbound) -> str:
    return event.text or event.reply_id or ""


def _changes(
    turn: _Turn, category_ids: Iterable[str], *, granted: bool, shown_text: str
) -> tuple[ConsentChange, ...]:
    return tuple(
        ConsentChange(
            category=category_id,
            granted=granted,
            source=ConsentSource.WHATSAPP,
            text=shown_text,
            text_version=text_version(shown_text),
            occurred_at=turn.event.timestamp,
            evidence=_evidence(turn.event),
        )
        for category_id in category_ids
    )


def _in_catalog_order(catalog: Catalog, ids: frozenset[str]) -> tuple[str, ...]:
    known = tuple(cid for cid in catalog.category_ids if cid in ids)
    return known + tuple(sorted(ids - set(known)))


def _languages_contact_first(turn: _Turn) -> tuple[str, ...]:
    others = tuple(o for o in _usable_languages(turn.catalog) if o != turn.language)
    return (turn.language, *others)


def _answered(turn: _Turn, candidates: Iterable[Reply]) -> Reply | None:
    """The question this message answers, if its wording is still the current one (C19).

    The version is the one of the message replied to; a typed answer has none, so it answers
    the last question shown. Any language counts: the person may have switched since."""
    version = turn.event.context_text_version or turn.state.prompt_version
    return next((r for r in candidates if r.text_version == version), None)


def _prompts(turn: _Turn) -> tuple[Reply, ...]:
    return tuple(render_prompt(turn.catalog, lang) for lang in _languages_contact_first(turn))


def _category_prompts(turn: _Turn, category_id: str) -> tuple[Reply, ...]:
    return tuple(
        render_category_prompt(turn.catalog, category_id, lang)
        for lang in _languages_contact_first(turn)
    )


def _within_lifetime(turn: _Turn) -> bool:
    asked_at = turn.state.asked_at
    return asked_at is not None and turn.event.timestamp - asked_at <= PROMPT_LIFETIME


def _typed_before_question(turn: _Turn) -> bool:
    """A typed answer written before the question was shown ("hi", "yes" sent in a burst) answers
    nothing. Buttons need no such check: their context is the very message they were tapped on."""
    if turn.signal not in (Signal.YES, Signal.NO):
        return False
    asked_at = turn.state.asked_at
    return asked_at is None or turn.event.timestamp < asked_at - CLOCK_SLACK


def _open_category(turn: _Turn) -> str | None:
    """The category a message is about: the button's, or else the question being asked."""
    if turn.category_id is not None:
        return turn.category_id
    if turn.state.stage is Stage.CHOOSING and turn.state.pending:
        return turn.state.pending[0]
    return None


def _without(pending: tuple[str, ...], category_id: str) -> tuple[str, ...]:
    return tuple(p for p in pending if p != category_id)


# ---------------------------------------------------------------------------------------------
# Showing questions and settling the dialogue.


def _show_prompt(
    turn: _Turn, state: DialogueState | None = None, *, reprompts: int = 0
) -> StepResult:
    prompt = render_prompt(turn.catalog, turn.language)
    state = replace(
        state if state is not None else turn.state,
        stage=Stage.ASKED,
        pending=(),
        prompt_version=prompt.text_version,
        asked_at=turn.now,
        reprompts=reprompts,
    )
    return StepResult(state=state, replies=(prompt,))


def _ask_category(
    turn: _Turn,
    state: DialogueState,
    pending: tuple[str, ...],
    *,
    reprompts: int = 0,
    changes: tuple[ConsentChange, ...] = (),
) -> StepResult:
    question = render_category_prompt(turn.catalog, pending[0], turn.language)
    state = replace(
        state,
        stage=Stage.CHOOSING,
        pending=pending,
        prompt_version=question.text_version,
        asked_at=turn.now,
        reprompts=reprompts,
    )
    return StepResult(state=state, changes=changes, replies=(question,))


def _show_question(turn: _Turn, state: DialogueState, *, reprompts: int = 0) -> StepResult:
    """The question that is open: the category being asked while choosing, else the prompt."""
    if state.stage is Stage.CHOOSING and state.pending:
        return _ask_category(turn, state, state.pending, reprompts=reprompts)
    return _show_prompt(turn, state, reprompts=reprompts)


def _settled_stage(catalog: Catalog, granted: frozenset[str]) -> Stage:
    return (
        Stage.SUBSCRIBED if any(cid in granted for cid in catalog.category_ids) else Stage.DECLINED
    )


def _settle(turn: _Turn, state: DialogueState, changes: tuple[ConsentChange, ...]) -> StepResult:
    """After an answer: the next category if any is left, else confirm where the contact stands."""
    if state.stage is Stage.CHOOSING and state.pending:
        return _ask_category(turn, state, state.pending, changes=changes)
    stage = _settled_stage(turn.catalog, state.granted)
    state = replace(state, stage=stage, pending=(), reprompts=0)
    if stage is Stage.SUBSCRIBED:
        reply = _confirmation(turn, state.granted)
    else:
        reply = _reply(turn, "declined", "declined", company=turn.catalog.company.name)
    return StepResult(state=state, changes=changes, replies=(reply,))


# ---------------------------------------------------------------------------------------------
# Transition handlers.


def _accept_all(turn: _Turn) -> StepResult:
    prompt = _answered(turn, _prompts(turn))
    if prompt is None or not _within_lifetime(turn) or _typed_before_question(turn):
        # Outdated wording, expired, or no prompt to answer: not consent; ask again (C02, C19).
        return _show_prompt(turn)
    ids = turn.catalog.category_ids
    changes = _changes(turn, ids, granted=True, shown_text=prompt.shown_text)
    state = replace(turn.state, granted=turn.state.granted | frozenset(ids), pending=())
    return _settle(turn, state, changes)


def _decline_all(turn: _Turn) -> StepResult:
    prompt = _answered(turn, _prompts(turn))
    if turn.signal is Signal.NO and (prompt is None or _typed_before_question(turn)):
        # A typed "no" with no current prompt on screen answers nothing we can name.
        return _show_prompt(turn)
    ids = turn.catalog.category_ids
    words = prompt.shown_text if prompt else _own_words(turn.event)
    changes = _changes(turn, ids, granted=False, shown_text=words)
    state = replace(turn.state, granted=turn.state.granted - frozenset(ids), pending=())
    return _settle(turn, state, changes)


def _choose(turn: _Turn) -> StepResult:
    ids = turn.catalog.category_ids
    if not ids:
        return _show_prompt(turn)
    return _ask_category(turn, turn.state, ids)


def _accept_category(turn: _Turn) -> StepResult:
    category_id = _open_category(turn)
    if category_id is None:
        return _show_question(turn, turn.state)
    question = _answered(turn, _category_prompts(turn, category_id))
    if question is None or not _within_lifetime(turn) or _typed_before_question(turn):
        # Not consent: ask this category again, in its current wording (C02, C19).
        pending = (category_id, *_without(turn.state.pending, category_id))
        return _ask_category(turn, turn.state, pending)
    changes = _changes(turn, (category_id,), granted=True, shown_text=question.shown_text)
    state = replace(
        turn.state,
        granted=turn.state.granted | {category_id},
        pending=_without(turn.state.pending, category_id),
    )
    return _settle(turn, state, changes)


def _decline_category(turn: _Turn) -> StepResult:
    category_id = _open_category(turn)
    if category_id is None:
        return _show_question(turn, turn.state)
    question = _answered(turn, _category_prompts(turn, category_id))
    if turn.signal is Signal.NO and (question is None or _typed_before_question(turn)):
        return _ask_category(turn, turn.state, turn.state.pending)
    words = question.shown_text if question else _own_words(turn.event)
    changes = _changes(turn, (category_id,), granted=False, shown_text=words)
    state = replace(
        turn.state,
        granted=turn.state.granted - {category_id},
        pending=_without(turn.state.pending, category_id),
    )
    return _settle(turn, state, changes)


def _stop_all(turn: _Turn) -> StepResult:
    withdrawn = _in_catalog_order(turn.catalog, turn.state.granted)
    changes = _changes(turn, withdrawn, granted=False, shown_text=_own_words(turn.event))
    state = replace(turn.state, stage=Stage.STOPPED, granted=frozenset(), pending=(), reprompts=0)
    reply = _reply(turn, "stop", "stop", company=turn.catalog.company.name)
    return StepResult(state=state, changes=changes, replies=(reply,))


def _stop_category(turn: _Turn) -> StepResult:
    category_id = turn.category_id
    category = turn.catalog.category(category_id) if category_id else None
    if category is None:
        return _no_transition(turn)
    granted = turn.state.granted
    changes: tuple[ConsentChange, ...] = ()
    if category.id in granted:
        changes = _changes(turn, (category.id,), granted=False, shown_text=_own_words(turn.event))
    state = replace(
        turn.state,
        granted=granted - {category.id},
        pending=_without(turn.state.pending, category.id),
        reprompts=0,
    )
    # Withdrawing the last granted category, or the last one still to be asked, settles the stage.
    finished_choosing = state.stage is Stage.CHOOSING and not state.pending
    if finished_choosing or state.stage is Stage.SUBSCRIBED:
        state = replace(state, stage=_settled_stage(turn.catalog, state.granted))
    reply = _reply(
        turn,
        "stop_category",
        "stop_category",
        company=turn.catalog.company.name,
        title=category.title_in(turn.language),
    )
    return StepResult(state=state, changes=changes, replies=(reply,))


def _start(turn: _Turn) -> StepResult:
    return _show_prompt(turn)  # C09: the prompt again, nothing granted


def _help(turn: _Turn) -> StepResult:
    return StepResult(state=replace(turn.state, reprompts=0), replies=(_help_reply(turn),))


def _preferences(turn: _Turn) -> StepResult:
    return StepResult(state=replace(turn.state, reprompts=0), replies=(_preferences_reply(turn),))


def _switch_language(turn: _Turn) -> StepResult:
    language = _usable(turn.catalog, turn.switch_to)
    state = replace(turn.state, language=language, language_chosen=True, reprompts=0)
    turn = replace(turn, state=state, language=language)
    if state.stage in (Stage.NEW, Stage.ASKED, Stage.CHOOSING):
        return _show_question(turn, state)
    return StepResult(state=state, replies=(_reply(turn, "language_changed", "language"),))


def _cannot_read(turn: _Turn) -> StepResult:
    return StepResult(state=turn.state, replies=(_reply(turn, "unreadable", "unreadable"),))


def _silence(turn: _Turn) -> StepResult:
    return StepResult(state=turn.state)


def _reprompt(turn: _Turn) -> StepResult:
    count = turn.state.reprompts
    if count < MAX_REPROMPTS:
        return _show_question(turn, turn.state, reprompts=count + 1)
    if count == MAX_REPROMPTS:
        state = replace(turn.state, reprompts=count + 1)
        return StepResult(state=state, replies=(_reply(turn, "reprompt_limit", "reprompt_limit"),))
    return _silence(turn)  # the pointer to HELP was given; never loop


def _fallback(turn: _Turn) -> StepResult:
    # Settled contacts chatting get one pointer to HELP, then quiet until they do something.
    if turn.state.reprompts:
        return _silence(turn)
    reply = _reply(turn, "fallback", "fallback", company=turn.catalog.company.name)
    return StepResult(state=replace(turn.state, reprompts=1), replies=(reply,))


# ---------------------------------------------------------------------------------------------
# The transitions, as data. Lookup order: (stage, signal), then (ANY, signal), then the stage's
# NO_TRANSITION case: an input with no transition is always an explicit, named case.

ANY = None

TRANSITIONS: Mapping[tuple[Stage | None, Signal], Handler] = MappingProxyType(
    {
        # Keywords work from every stage (C05).
        (ANY, Signal.STOP_ALL): _stop_all,  # C07; repeated while STOPPED: confirmed, no rows
        (ANY, Signal.STOP_CATEGORY): _stop_category,  # C08
        (ANY, Signal.START): _start,  # C09
        (ANY, Signal.HELP): _help,  # C10
        (ANY, Signal.PREFERENCES): _preferences,
        (ANY, Signal.LANGUAGE): _switch_language,  # C11
        # Our buttons are answered wherever they are tapped; yes is checked to be live (C02, C19).
        (ANY, Signal.ALL_YES): _accept_all,
        (ANY, Signal.CHOOSE): _choose,
        (ANY, Signal.ALL_NO): _decline_all,
        (ANY, Signal.CATEGORY_YES): _accept_category,
        (ANY, Signal.CATEGORY_NO): _decline_category,
        (ANY, Signal.UNREADABLE): _cannot_read,
        # A typed yes/no answers the question on screen, as its button would.
        (Stage.ASKED, Signal.YES): _accept_all,
        (Stage.ASKED, Signal.NO): _decline_all,
        (Stage.CHOOSING, Signal.YES): _accept_category,
        (Stage.CHOOSING, Signal.NO): _decline_category,
        # STOPPED: silence until they opt in again (C07). Still answered: STOP, START, HELP,
        # PREFERENCES, LANGUAGE, a yes button, and "Let me choose" (the PREFERENCES button).
        (Stage.STOPPED, Signal.STOP_CATEGORY): _silence,
        (Stage.STOPPED, Signal.ALL_NO): _silence,
        (Stage.STOPPED, Signal.CATEGORY_NO): _silence,
        (Stage.STOPPED, Signal.UNREADABLE): _silence,
    }
)

NO_TRANSITION: Mapping[Stage, Handler] = MappingProxyType(
    {
        Stage.NEW: _start,  # first contact: ask
        Stage.ASKED: _reprompt,
        Stage.CHOOSING: _reprompt,
        Stage.SUBSCRIBED: _fallback,
        Stage.DECLINED: _fallback,
        Stage.STOPPED: _silence,
    }
)

# A message from a click-to-WhatsApp ad is never consent (C03). Keywords grant nothing, so they
# are honoured; anything else is handled as a first contact.
HONOURED_FROM_AD = frozenset(
    {
        Signal.STOP_ALL,
        Signal.STOP_CATEGORY,
        Signal.START,
        Signal.HELP,
        Signal.PREFERENCES,
        Signal.LANGUAGE,
    }
)
AD_ENTRY: Mapping[Stage, Handler] = MappingProxyType(
    {stage: _silence if stage is Stage.STOPPED else _start for stage in Stage}
)


def _no_transition(turn: _Turn) -> StepResult:
    return NO_TRANSITION[turn.state.stage](turn)


def _handler(stage: Stage, signal: Signal, from_ad: bool) -> Handler:
    if from_ad and signal not in HONOURED_FROM_AD:
        return AD_ENTRY[stage]
    return (
        TRANSITIONS.get((stage, signal)) or TRANSITIONS.get((ANY, signal)) or NO_TRANSITION[stage]
    )


# ---------------------------------------------------------------------------------------------
# Entry points.


def _contact_language(
    state: DialogueState, event: Inbound, catalog: Catalog
) -> tuple[str, DialogueState]:
    """C11: the chosen language; else the language of what they type (Arabic script → Arabic,
    other letters → the default); else the last one seen; else the default."""
    usable = _usable_languages(catalog)
    if state.language in usable and state.language_chosen:
        return state.language, state
    typed = event.text if event.kind is InboundKind.TEXT else None
    if typed and any(ch.isalpha() for ch in typed):
        detected = "ar" if "ar" in usable and is_arabic(typed) else usable[0]
        return detected, replace(state, language=detected)
    if state.language in usable:
        return state.language, state
    return usable[0], state


def _classify(event: Inbound, catalog: Catalog) -> tuple[Signal, str | None, str | None]:
    """(signal, category id, language) for one message. Our button ids first, then keywords."""
    if event.kind in _UNREADABLE_KINDS:
        return Signal.UNREADABLE, None, None
    reply_id = event.reply_id or ""
    if reply_id in _OPTIN_SIGNALS:
        return _OPTIN_SIGNALS[reply_id], None, None
    prefix, _, rest = reply_id.partition(":")
    category_id, _, answer = rest.rpartition(":")
    if prefix == "cat" and answer in ("yes", "no") and catalog.category(category_id):
        signal = Signal.CATEGORY_YES if answer == "yes" else Signal.CATEGORY_NO
        return signal, category_id, None
    # A button that is not ours (a template quick reply) may still carry a keyword.
    for candidate in (event.text, event.reply_id):
        match = match_keyword(candidate, catalog) if candidate else None
        if match is not None:
            return _INTENT_SIGNALS[match.intent], match.category_id, match.language
    return Signal.OTHER, None, None


def step(state: DialogueState, event: Inbound, catalog: Catalog, now: datetime) -> StepResult:
    """One inbound message: the new state, the ledger rows to append and the replies to send."""
    if event.kind is InboundKind.BUTTON and normalise(event.reply_id or event.text or "") == (
        META_STOP_PROMOTIONS
    ):
        return marketing_preference(state, "stop", catalog, event.timestamp, _evidence(event))
    language, state = _contact_language(state, event, catalog)
    signal, category_id, switch_to = _classify(event, catalog)
    turn = _Turn(
        state=state,
        event=event,
        catalog=catalog,
        now=now,
        language=language,
        signal=signal,
        category_id=category_id,
        switch_to=switch_to,
    )
    return _handler(state.stage, signal, event.from_ad)(turn)


def marketing_preference(
    state: DialogueState,
    value: str,
    catalog: Catalog,
    occurred_at: datetime,
    evidence: Mapping[str, str],
) -> StepResult:
    """Meta's marketing opt-out (C13): "stop" withdraws every granted marketing category.

    "resume" only lifts Meta's own block; it is not consent to any of our categories."""
    if value.strip().casefold() != "stop":
        return StepResult(state=state)
    withdrawn = tuple(cid for cid in catalog.marketing_ids if cid in state.granted)
    changes = tuple(
        ConsentChange(
            category=category_id,
            granted=False,
            source=ConsentSource.META,
            text=META_OPT_OUT_TEXT,
            text_version=text_version(META_OPT_OUT_TEXT),
            occurred_at=occurred_at,
            evidence=dict(evidence),
        )
        for category_id in withdrawn
    )
    granted = state.granted - frozenset(withdrawn)
    stage = state.stage
    if stage is Stage.SUBSCRIBED:
        stage = _settled_stage(catalog, granted)
    return StepResult(state=replace(state, granted=granted, stage=stage), changes=changes)
