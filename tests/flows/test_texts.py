"""The texts files: the same keys and placeholders in every language, within Meta's limits."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

import pytest

from flows import texts
from flows.catalog import Catalog
from flows.dialogue import step
from flows.keywords import Intent, match_keyword
from flows.model import DialogueState, Inbound, InboundKind, Stage
from flows.normalise import is_arabic
from flows.render import render_category_prompt, render_prompt

from .conftest import NOW

LANGUAGES = sorted(texts.LANGUAGES)


def test_english_and_arabic_are_both_shipped() -> None:
    assert {"en", "ar"} <= texts.LANGUAGES


def test_every_texts_file_is_a_language_read_as_written_and_read_only() -> None:
    folder = Path(texts.__file__).parent / "texts"
    shipped = {path.stem: path for path in folder.glob("*.toml")}
    loaded = texts.load_texts()
    assert set(loaded) == set(shipped) == texts.LANGUAGES
    for language, path in shipped.items():
        assert dict(loaded[language]) == tomllib.loads(path.read_text(encoding="utf-8"))
    with pytest.raises(TypeError):
        loaded["en"]["help"] = "changed at run time"  # type: ignore[index]
    with pytest.raises(TypeError):
        loaded["xx"] = {}  # type: ignore[index]


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_language_has_the_same_keys_and_placeholders(language: str) -> None:
    reference = texts.TEXTS["en"]
    table = texts.TEXTS[language]
    assert set(table) == set(reference)
    for key, template in table.items():
        assert texts.placeholders(template) == texts.placeholders(reference[key]), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_every_text_is_a_non_empty_string(language: str) -> None:
    for key, value in texts.TEXTS[language].items():
        assert isinstance(value, str) and value.strip(), key


def _words(template: str) -> str:
    return re.sub(r"\{[a-z_]+\}", "", template)


def test_arabic_texts_are_written_in_arabic_and_english_ones_are_not() -> None:
    for key, value in texts.TEXTS["ar"].items():
        # Lines made only of placeholders ("• {title}") carry no words of their own.
        assert is_arabic(_words(value)) or not re.search(r"\w", _words(value)), key
    for key, value in texts.TEXTS["en"].items():
        assert not is_arabic(value), key


@pytest.mark.parametrize("language", LANGUAGES)
def test_button_titles_fit_metas_20_character_limit(language: str) -> None:
    buttons = {k: v for k, v in texts.TEXTS[language].items() if k.startswith("button_")}
    assert len(buttons) >= 6
    for key, title in buttons.items():
        assert len(title) <= 20, key


@pytest.mark.parametrize("language", ["en", "ar"])
def test_rendered_bodies_fit_metas_1024_character_limit(language: str, catalog: Catalog) -> None:
    replies = [render_prompt(catalog, language)]
    replies += [render_category_prompt(catalog, cid, language) for cid in catalog.category_ids]
    state = DialogueState(language=language, granted=frozenset({"orders"}))
    for word in ("HELP", "PREFERENCES", "STOP"):
        event = Inbound(kind=InboundKind.TEXT, wamid="w", timestamp=NOW, text=word)
        replies += step(state, event, catalog, NOW).replies
    assert {r.purpose for r in replies} >= {"prompt", "category_prompt", "help", "preferences"}
    for reply in replies:
        assert 0 < len(reply.body) <= 1024, reply.purpose
        assert all(len(b.title) <= 20 for b in reply.buttons)


def test_text_fills_placeholders_and_refuses_missing_ones() -> None:
    assert "Nimbus" in texts.text("en", "stop", company="Nimbus")
    with pytest.raises(KeyError):
        texts.text("en", "stop")
    with pytest.raises(KeyError):
        texts.text("xx", "stop", company="Nimbus")


# The words our texts tell customers to send must be words the bot understands.
QUOTED_ARABIC = re.compile(r"«([^»{}]+)»")
SHOUTED_ENGLISH = re.compile(r"\b[A-Z]{3,}\b")


def test_every_keyword_the_texts_mention_is_understood(catalog: Catalog) -> None:
    mentioned = set()
    for value in texts.TEXTS["ar"].values():
        mentioned |= set(QUOTED_ARABIC.findall(value))
    for value in texts.TEXTS["en"].values():
        mentioned |= set(SHOUTED_ENGLISH.findall(value))
    assert {
        "توقف",
        "ابدأ",
        "الإعدادات",
        "مساعدة",
        "STOP",
        "START",
        "PREFERENCES",
        "HELP",
    } <= mentioned
    for word in mentioned:
        assert match_keyword(word, catalog) is not None, word


@pytest.mark.parametrize("language", ["en", "ar"])
def test_each_language_keyword_switches_to_that_language(language: str, catalog: Catalog) -> None:
    match = match_keyword(texts.text(language, "language_keyword"), catalog)
    assert match is not None
    assert (match.intent, match.language) == (Intent.LANGUAGE, language)


@pytest.mark.parametrize("language", ["en", "ar"])
def test_c10_help_example_really_stops_that_category(language: str, catalog: Catalog) -> None:
    state = DialogueState(stage=Stage.SUBSCRIBED, language=language)
    event = Inbound(kind=InboundKind.TEXT, wamid="w", timestamp=NOW, text="HELP")
    (reply,) = step(state, event, catalog, NOW).replies
    # The line whose last part is a command naming a category: "…, for example: STOP Offers".
    tails = [line.rsplit(": ", 1)[-1].strip() for line in reply.body.splitlines()]
    (command,) = [t for t in tails if t.split(" ", 1)[0] in ("STOP", "إيقاف") and " " in t]
    match = match_keyword(command, catalog)
    assert match is not None and match.intent is Intent.STOP_CATEGORY, command
    assert match.category_id == "offers"
