"""The replies as rendered: what each one names and shows (C01, C10), and its version."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flows.catalog import Catalog
from flows.model import DialogueState, Reply, Stage
from flows.policy import Purpose
from flows.render import (
    render_category_prompt,
    render_confirmation,
    render_notice,
    render_prompt,
)
from flows.versioning import text_version

from .conftest import BOTH, ChatFactory, subscribed

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
