"""The replies as rendered: what each one names and shows (C01, C10), and its version."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace

import pytest

from flows.catalog import Catalog, Category
from flows.model import DialogueState, Reply, Stage
from flows.policy import Purpose
from flows.render import (
    render_already_subscribed,
    render_category_prompt,
    render_confirmation,
    render_help,
    render_kept,
    render_notice,
    render_prompt,
    render_stop_question,
)
from flows.versioning import text_version

from .conftest import BOTH, ChatFactory, build_catalog, subscribed

# --- C01: the prompt and the category question ---------------------------------------------------


@pytest.mark.parametrize(
    ("language", "whatsapp", "stop"), [("en", "WhatsApp", "STOP"), ("ar", "واتساب", "توقف")]
)
def test_c01_prompt_names_company_whatsapp_categories_and_stop(
    language: str, whatsapp: str, stop: str, catalog: Catalog
) -> None:
    prompt = render_prompt(catalog, language)
    assert prompt.purpose == "prompt"
    assert prompt.language == language
    assert "Nimbus Bakery" in prompt.body
    assert whatsapp in prompt.body
    for category in catalog.categories:
        assert category.title[language] in prompt.body
        assert category.description[language] in prompt.body
    assert stop in prompt.body
    assert "https://nimbus.example/privacy" in prompt.body
    assert [b.id for b in prompt.buttons] == ["optin:yes", "optin:choose", "optin:no"]


def test_c01_prompt_without_privacy_url_leaves_it_out(
    catalog_factory: Callable[..., Catalog],
) -> None:
    prompt = render_prompt(catalog_factory(privacy_url=None), "en")
    assert "http" not in prompt.body
    assert prompt.text_version != render_prompt(catalog_factory(), "en").text_version


@pytest.mark.parametrize(
    ("language", "whatsapp", "stop"), [("en", "WhatsApp", "STOP"), ("ar", "واتساب", "توقف")]
)
def test_c01_category_question_names_company_category_whatsapp_and_stop(
    language: str, whatsapp: str, stop: str, catalog: Catalog
) -> None:
    question = render_category_prompt(catalog, "offers", language)
    assert question.purpose == "category_prompt"
    assert question.language == language
    assert "Nimbus Bakery" in question.body
    assert whatsapp in question.body
    assert catalog.category("offers").title[language] in question.body  # type: ignore[union-attr]
    assert stop in question.body
    assert [b.id for b in question.buttons] == ["cat:offers:yes", "cat:offers:no"]


def test_the_prompt_version_is_the_shown_prompts_version(catalog: Catalog) -> None:
    en, ar = (render_prompt(catalog, lang).text_version for lang in ("en", "ar"))
    assert en == text_version(render_prompt(catalog, "en").shown_text)
    assert en != ar
    # A language not offered falls back to the default one.
    assert render_prompt(catalog, "fr").text_version == en


# --- C10: HELP -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("language", "words"),
    [
        ("en", ["STOP", "PREFERENCES", "START"]),
        ("ar", ["توقف", "الإعدادات", "ابدأ"]),
    ],
)
def test_c10_help_names_company_support_categories_stop_and_preferences(
    language: str, words: list[str], chat: ChatFactory, catalog: Catalog
) -> None:
    state = DialogueState(
        stage=Stage.SUBSCRIBED, language=language, language_chosen=True, granted=BOTH
    )
    (reply,) = chat(state).send("HELP").replies
    assert "Nimbus Bakery" in reply.body
    assert "help@nimbus.example" in reply.body
    for category in catalog.categories:
        assert category.title[language] in reply.body
    for word in words:
        assert word in reply.body
    other_language = {"en": "العربية", "ar": "ENGLISH"}[language]
    assert other_language in reply.body


def test_c10_help_for_a_single_language_company_offers_no_language_switch(
    chat: ChatFactory, catalog_factory: Callable[..., Catalog]
) -> None:
    c = chat(catalog=catalog_factory(languages=("en",)))
    (reply,) = c.send("HELP").replies
    assert "العربية" not in reply.body


# --- preferences ---------------------------------------------------------------------------------


def test_preferences_shows_each_category_on_or_off_with_a_change_button(chat: ChatFactory) -> None:
    c = chat(DialogueState(stage=Stage.SUBSCRIBED, granted=frozenset({"orders"})))
    (reply,) = c.send("PREFERENCES").replies
    lines = reply.body.splitlines()
    assert any("Order updates" in line and line.endswith("on") for line in lines)
    assert any("Offers" in line and line.endswith("off") for line in lines)
    assert [b.id for b in reply.buttons] == ["optin:choose"]


# --- every reply ---------------------------------------------------------------------------------


def test_replies_are_well_formed_reply_objects(chat: ChatFactory) -> None:
    c = subscribed(chat)
    for _, reply in c.sent:
        assert isinstance(reply, Reply)
        assert reply.language in ("en", "ar")
        assert len(reply.buttons) <= 3


@pytest.mark.parametrize("language", ["en", "ar"])
def test_the_confirmation_lists_what_is_granted_in_catalog_order(
    language: str, catalog: Catalog
) -> None:
    reply = render_confirmation(catalog, language, frozenset({"offers", "orders"}))
    assert (reply.purpose, reply.language, reply.buttons) == (Purpose.CONFIRMATION, language, ())
    titles = [c.title[language] for c in catalog.categories]
    assert [reply.body.index(t) for t in titles] == sorted(reply.body.index(t) for t in titles)
    only_offers = render_confirmation(catalog, language, frozenset({"offers"}))
    assert catalog.categories[0].title[language] not in only_offers.body


NOTICES = [
    Purpose.DECLINED,
    Purpose.STOP,
    Purpose.STOP_CATEGORY,
    Purpose.LANGUAGE,
    Purpose.UNREADABLE,
    Purpose.REPROMPT_LIMIT,
    Purpose.FALLBACK,
]


@pytest.mark.parametrize("language", ["en", "ar"])
@pytest.mark.parametrize("purpose", NOTICES)
def test_every_short_reply_is_one_text_in_the_contacts_language(
    purpose: Purpose, language: str, catalog: Catalog
) -> None:
    reply = render_notice(catalog, language, purpose, title="Offers")
    assert (reply.purpose, reply.language, reply.buttons) == (purpose, language, ())
    assert reply.body.strip()
    if purpose in (Purpose.DECLINED, Purpose.STOP, Purpose.STOP_CATEGORY, Purpose.FALLBACK):
        assert "Nimbus Bakery" in reply.body


# --- the exact English texts: what the person reads is what the ledger records (C12) -------------

ENGLISH = {
    "prompt": (
        "Nimbus Bakery would like to send you these messages here on WhatsApp:\n"
        "• Order updates: Shipping and delivery news\n"
        "• Offers: Discounts and new products\n\n"
        "Would you like to receive them? You can stop at any time by sending STOP.\n\n"
        "How we handle your data: https://nimbus.example/privacy"
    ),
    "category prompt": (
        "Would you like to receive Offers from Nimbus Bakery here on WhatsApp?\n"
        "Discounts and new products\n\n"
        "You can stop at any time by sending STOP."
    ),
    "help": (
        "Nimbus Bakery on WhatsApp\n"
        "Support: help@nimbus.example\n\n"
        "Messages we can send you:\n"
        "• Order updates: Shipping and delivery news\n"
        "• Offers: Discounts and new products\n\n"
        "• To stop all messages, send STOP.\n"
        "• To stop one kind, send STOP and its name, for example: STOP Offers\n"
        "• To see or change your choices, send PREFERENCES.\n"
        "• To start again, send START.\n"
        "• To change the language, send العربية."
    ),
    "kept": (
        "Nothing has changed: Nimbus Bakery will keep sending you these messages on WhatsApp:\n"
        "• Order updates\n\n"
        "To stop, send STOP. To change your choices, send PREFERENCES."
    ),
    "kept, nothing granted": (
        "Nothing has changed: Nimbus Bakery does not send you messages on WhatsApp. If you would "
        "like to receive them, send START."
    ),
    "already subscribed": (
        "You already receive these messages from Nimbus Bakery on WhatsApp:\n"
        "• Order updates\n"
        "• Offers\n\n"
        "To change your choices, tap the button below. To stop, send STOP."
    ),
}
RENDERED: dict[str, Callable[[Catalog], Reply]] = {
    "prompt": lambda c: render_prompt(c, "en"),
    "category prompt": lambda c: render_category_prompt(c, "offers", "en"),
    "help": lambda c: render_help(c, "en"),
    "kept": lambda c: render_kept(c, "en", frozenset({"orders"})),
    "kept, nothing granted": lambda c: render_kept(c, "en", frozenset()),
    "already subscribed": lambda c: render_already_subscribed(c, "en", BOTH),
}


def test_every_reply_is_in_the_language_it_was_rendered_in(catalog: Catalog) -> None:
    for render in RENDERED.values():
        assert render(catalog).language == "en"
    arabic = [
        render_kept(catalog, "ar", frozenset({"orders"})),
        render_kept(catalog, "ar", frozenset()),
        render_help(catalog, "ar"),
        render_already_subscribed(catalog, "ar", BOTH),
    ]
    assert [reply.language for reply in arabic] == ["ar"] * 4


@pytest.mark.parametrize("name", list(ENGLISH))
def test_c01_c10_each_english_text_reads_exactly_as_written(name: str, catalog: Catalog) -> None:
    reply = RENDERED[name](catalog)
    assert reply.body == ENGLISH[name]
    assert reply.language == "en"


def test_already_subscribed_offers_to_change_the_choices(catalog: Catalog) -> None:
    reply = render_already_subscribed(catalog, "en", BOTH)
    assert [(b.id, b.title) for b in reply.buttons] == [("optin:choose", "Change my choices")]


def test_c10_help_gives_a_real_category_as_example_even_with_no_marketing_one() -> None:
    catalog = build_catalog()
    service_only = replace(
        catalog, categories=tuple(replace(c, marketing=False) for c in catalog.categories)
    )
    assert "for example: STOP Order updates\n" in render_help(service_only, "en").body
    assert "for example: STOP Offers\n" in render_help(catalog, "en").body
    assert "مثل: إيقاف العروض\n" in render_help(catalog, "ar").body  # in their language


def test_a_category_shown_in_a_language_it_has_no_words_for_falls_back_sensibly() -> None:
    catalog = build_catalog()
    english_only = Category(
        id="news", marketing=True, title={"en": "News"}, description={"en": "What is new"}
    )
    untranslated = Category(
        id="tips", marketing=True, title={"en": "Tips", "ar": "نصائح"}, description={"en": "How to"}
    )
    catalog = replace(catalog, categories=(*catalog.categories, english_only, untranslated))
    news = render_category_prompt(catalog, "news", "ar").body
    assert "«News»" in news and "\nNews\n" in news  # its only title, also for the description
    tips = render_category_prompt(catalog, "tips", "ar").body
    assert "نصائح\n" in tips and "How to" not in tips  # its Arabic title stands in


def test_stop_question_titles_fit_whatsapp_and_are_cut_cleanly() -> None:
    # Four choices make a list: its rows hold 24 characters, a button 20.
    catalog = build_catalog()
    weekly = Category(
        id="weekly", marketing=True, title={"en": "Weekly baking notes"}, description={}
    )
    daily = Category(
        id="daily", marketing=True, title={"en": "Bread and cake of the day"}, description={}
    )
    catalog = replace(catalog, categories=(weekly, daily))
    menu = render_stop_question(catalog, "en", ("weekly", "daily"))
    assert menu.menu is not None
    titles = {b.id: b.title for b in menu.buttons}
    assert titles["stopask:weekly"] == "Stop Weekly baking notes"  # exactly 24: whole
    assert titles["stopask:daily"] == "Stop Bread and cake of…"  # no space before the …
    assert all(len(title) <= 24 for title in titles.values())
    one = render_stop_question(catalog, "en", ("weekly",))
    assert one.menu is None
    assert {b.id: b.title for b in one.buttons}["stopask:weekly"] == "Stop Weekly baking…"
    seasonal = Category(
        id="seasonal", marketing=True, title={"en": "Seasonal specials"}, description={}
    )
    cut = render_stop_question(replace(catalog, categories=(seasonal,)), "en", ("seasonal",))
    assert {b.id: b.title for b in cut.buttons}["stopask:seasonal"] == "Stop Seasonal speci…"  # 20
