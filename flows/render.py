"""Every reply the dialogue sends, built from the catalog and the texts files."""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from flows import texts
from flows.catalog import Catalog
from flows.model import Button, Form, FormChoice, Reply
from flows.policy import Purpose
from flows.signals import (
    OPTIN_CHOOSE,
    OPTIN_NO,
    OPTIN_YES,
    STOPASK_ALL,
    STOPASK_KEEP,
    category_button_id,
    stopask_button_id,
    usable_language,
    usable_languages,
)

# Meta's limits for interactive messages: a longer choice goes in a list, long titles are cut.
BUTTONS_MAX = 3
BUTTON_TITLE_MAX = 20
LIST_ROWS_MAX = 10
LIST_ROW_TITLE_MAX = 24
FORM_DESCRIPTION_MAX = 300  # a checkbox's description in a WhatsApp Flow


def render_prompt(catalog: Catalog, language: str) -> Reply:
    """The consent prompt (C01): company, WhatsApp, each category, how to stop; three buttons."""
    language = usable_language(catalog, language)
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
    return Reply(body=body, buttons=buttons, purpose=Purpose.PROMPT, language=language)


def render_category_prompt(catalog: Catalog, category_id: str, language: str) -> Reply:
    """The question for one category, with its own yes/no buttons."""
    language = usable_language(catalog, language)
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
    return Reply(body=body, buttons=buttons, purpose=Purpose.CATEGORY_PROMPT, language=language)


def render_confirmation(catalog: Catalog, language: str, granted: frozenset[str]) -> Reply:
    """What the contact now receives and how to stop or change it (also after a double opt-in)."""
    lines = _granted_lines(catalog, language, granted)
    return Reply(
        body=texts.text(language, "confirmation", company=catalog.company.name, categories=lines),
        purpose=Purpose.CONFIRMATION,
        language=language,
    )


def render_already_subscribed(catalog: Catalog, language: str, granted: frozenset[str]) -> Reply:
    """START while subscribed: what they receive, and a button to change it."""
    body = texts.text(
        language,
        "already_subscribed",
        company=catalog.company.name,
        categories=_granted_lines(catalog, language, granted),
    )
    button = Button(id=OPTIN_CHOOSE, title=texts.text(language, "button_change"))
    return Reply(
        body=body, buttons=(button,), purpose=Purpose.ALREADY_SUBSCRIBED, language=language
    )


def render_stop_question(catalog: Catalog, language: str, categories: tuple[str, ...]) -> Reply:
    """C21: stop everything, stop one of these categories, or change nothing, in one tap.
    Beyond three choices they are the rows of a list, which holds ten."""
    language = usable_language(catalog, language)
    offered = [c for c in catalog.categories if c.id in categories][: LIST_ROWS_MAX - 2]
    choices = [
        (STOPASK_ALL, texts.text(language, "button_stop_all")),
        *(
            (
                stopask_button_id(c.id),
                texts.text(language, "button_stop_category", title=c.title_in(language)),
            )
            for c in offered
        ),
        (STOPASK_KEEP, texts.text(language, "button_keep")),
    ]
    menu = texts.text(language, "button_stop_menu") if len(choices) > BUTTONS_MAX else None
    limit = LIST_ROW_TITLE_MAX if menu else BUTTON_TITLE_MAX
    return Reply(
        body=texts.text(language, "stop_question", company=catalog.company.name),
        buttons=tuple(Button(id=i, title=_fit(title, limit)) for i, title in choices),
        menu=menu,
        purpose=Purpose.STOP_QUESTION,
        language=language,
    )


def render_kept(catalog: Catalog, language: str, granted: frozenset[str]) -> Reply:
    """The answer to "change nothing": it says so, and what they still receive."""
    company = catalog.company.name
    if any(c.id in granted for c in catalog.categories):
        lines = _granted_lines(catalog, language, granted)
        body = texts.text(language, "kept", company=company, categories=lines)
    else:
        body = texts.text(language, "kept_none", company=company)
    return Reply(body=body, purpose=Purpose.KEPT, language=language)


def render_help(catalog: Catalog, language: str) -> Reply:
    """C10: company, support contact, categories, how to stop, change choices or language."""
    # The example is a real category name, so "STOP <example>" as written does stop it.
    example = next((c for c in catalog.categories if c.marketing), catalog.categories[0])
    body = texts.text(
        language,
        "help",
        company=catalog.company.name,
        support=catalog.company.support,
        categories=_category_lines(catalog, language),
        example=example.title_in(language),
    )
    others = [
        texts.text(other, "language_keyword")
        for other in usable_languages(catalog)
        if other != language
    ]
    if others:
        body += "\n" + texts.text(language, "help_language", languages=" / ".join(others))
    return Reply(body=body, purpose=Purpose.HELP, language=language)


def render_preferences(catalog: Catalog, language: str, granted: frozenset[str]) -> Reply:
    """Each category on or off, and one button to change them."""
    lines = _preference_lines(catalog, language, granted)
    body = texts.text(language, "preferences", company=catalog.company.name, lines=lines)
    # The button starts the one-by-one questions: each answer there is its own explicit act.
    button = Button(id=OPTIN_CHOOSE, title=texts.text(language, "button_change"))
    return Reply(body=body, buttons=(button,), purpose=Purpose.PREFERENCES, language=language)


def render_preferences_form(catalog: Catalog, language: str, granted: frozenset[str]) -> Reply:
    """PREFERENCES as a WhatsApp Flow form: a checkbox per category with its description, the
    granted ones ticked; the form names the company, WhatsApp and how to stop (C01)."""
    language = usable_language(catalog, language)
    company = catalog.company.name
    form = Form(
        cta=texts.text(language, "button_change"),
        heading=texts.text(language, "form_heading"),
        intro=texts.text(language, "form_intro", company=company),
        label=texts.text(language, "form_label"),
        submit=texts.text(language, "form_submit"),
        choices=tuple(
            FormChoice(
                id=c.id,
                title=c.title_in(language),
                description=_fit(c.description_in(language), FORM_DESCRIPTION_MAX),
            )
            for c in catalog.categories
        ),
        ticked=catalog.in_order(granted & frozenset(catalog.category_ids)),
    )
    body = texts.text(language, "form_body", company=company)
    return Reply(body=body, form=form, purpose=Purpose.PREFERENCES_FORM, language=language)


def render_form_saved(
    catalog: Catalog, language: str, granted: frozenset[str], *, withdrew: bool
) -> Reply:
    """The answer to the form: each category on or off now. One that withdrew something is a
    withdrawal's confirmation, which retires every question sent before it (C23)."""
    lines = _preference_lines(catalog, language, granted)
    body = texts.text(language, "form_saved", company=catalog.company.name, lines=lines)
    purpose = Purpose.PREFERENCES_WITHDRAWN if withdrew else Purpose.PREFERENCES_SAVED
    return Reply(body=body, purpose=purpose, language=language)


def _preference_lines(catalog: Catalog, language: str, granted: frozenset[str]) -> str:
    return "\n".join(
        texts.text(
            language,
            "preference_on" if c.id in granted else "preference_off",
            title=c.title_in(language),
        )
        for c in catalog.categories
    )


# The short replies that are one text each, by purpose; every one may name the company.
_NOTICES: Mapping[Purpose, str] = MappingProxyType(
    {
        Purpose.DECLINED: "declined",
        Purpose.STOP: "stop",
        Purpose.STOP_CATEGORY: "stop_category",
        Purpose.LANGUAGE: "language_changed",
        Purpose.UNREADABLE: "unreadable",
        Purpose.REPROMPT_LIMIT: "reprompt_limit",
        Purpose.FALLBACK: "fallback",
        Purpose.HINT: "hint",
    }
)


def render_notice(catalog: Catalog, language: str, purpose: Purpose, **values: str) -> Reply:
    """One of the short text replies (a stop confirmation, a pointer to HELP, ...)."""
    body = texts.text(language, _NOTICES[purpose], company=catalog.company.name, **values)
    return Reply(body=body, purpose=purpose, language=language)


def _category_lines(catalog: Catalog, language: str) -> str:
    return "\n".join(
        texts.text(
            language,
            "category_line",
            title=c.title_in(language),
            description=c.description_in(language),
        )
        for c in catalog.categories
    )


def _granted_lines(catalog: Catalog, language: str, granted: frozenset[str]) -> str:
    return "\n".join(
        texts.text(language, "granted_line", title=c.title_in(language))
        for c in catalog.categories
        if c.id in granted
    )


def _fit(title: str, limit: int) -> str:
    """A title cut to Meta's limit; the body names every category in full."""
    return title if len(title) <= limit else title[: limit - 1].rstrip() + "…"
