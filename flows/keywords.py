"""Keywords customers type, as one table (CONTRACT section 4), and the whole-message matcher."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from types import MappingProxyType

from flows.catalog import Catalog, Category
from flows.normalise import normalise


class Intent(StrEnum):
    STOP_ALL = "stop_all"
    STOP_CATEGORY = "stop_category"
    START = "start"
    HELP = "help"
    PREFERENCES = "preferences"
    YES = "yes"
    NO = "no"
    LANGUAGE = "language"


@dataclass(frozen=True, slots=True, kw_only=True)
class KeywordMatch:
    intent: Intent
    category_id: str | None = None  # STOP_CATEGORY: which category
    language: str | None = None  # LANGUAGE: which language code


# Written as customers type them; compared after normalise(), so "إلغاء" also matches "الغاء".
# Beyond the contract's table: "stop all" and "أوقف" (the transitive imperative "stop it") stop
# everything, because honouring an unlisted but unmistakable revocation is the safe side (FCC 2024).
KEYWORDS: Mapping[Intent, tuple[str, ...]] = MappingProxyType(
    {
        Intent.STOP_ALL: (
            "STOP",
            "STOPALL",
            "STOP ALL",
            "UNSUBSCRIBE",
            "CANCEL",
            "END",
            "QUIT",
            "REVOKE",
            "OPTOUT",
            "OPT OUT",
            "OPT-OUT",
            "توقف",
            "إيقاف",
            "أوقف",
            "إلغاء",
            "إلغاء الاشتراك",
        ),
        # Normalised, "ابدأ" reads like "أبدًا" ("never"); START grants nothing, so that is harmless.
        Intent.START: ("START", "UNSTOP", "SUBSCRIBE", "ابدأ", "اشتراك", "اشترك"),
        Intent.HELP: ("HELP", "INFO", "مساعدة", "المساعدة"),
        Intent.PREFERENCES: (
            "PREFERENCES",
            "SETTINGS",
            "الإعدادات",
            "إعدادات",
            "تفضيلات",
            "التفضيلات",
        ),
        # Consent needs an unmistakable yes, but people say it many ways (CONTRACT section 4:
        # "yes please", "موافق"). The whole message must be the agreement: "ok but not offers"
        # or an emoji is not one. Gulf, Levantine and Egyptian forms are listed with MSA.
        Intent.YES: (
            "YES",
            "Y",
            "YES PLEASE",
            "YES PLS",
            "YES SURE",
            "YES THANKS",
            "YES THANK YOU",
            "YEAH",
            "YEP",
            "YUP",
            "SURE",
            "OK",
            "OKAY",
            "OK SURE",
            "OF COURSE",
            "I AGREE",
            "AGREED",
            "نعم",
            "أجل",
            "موافق",
            "موافقة",
            "أوافق",
            "نعم أوافق",
            "نعم موافق",
            "نعم من فضلك",
            "أيوه",
            "أيوا",
            "إيوه",
            "أكيد",
            "طبعا",
            "تمام",
            "ماشي",
            "أوكي",
        ),
        Intent.NO: (
            "NO",
            "N",
            "NO THANKS",
            "NO THANK YOU",
            "NOPE",
            "NAH",
            "لا",
            "لا شكرا",
            "لأ",
            "لاء",
            "كلا",
            "لا أوافق",
        ),
    }
)

# The word that switches the dialogue to a language, by language code.
LANGUAGE_KEYWORDS: Mapping[str, tuple[str, ...]] = MappingProxyType(
    {
        "en": ("ENGLISH", "الإنجليزية", "إنجليزي"),
        "ar": ("ARABIC", "العربية", "عربي"),
    }
)

# "<prefix> <category keyword, title or id>" stops one category (C08). "CANCEL" is left out on
# purpose: "cancel order" is far more likely about a cake than about order updates.
CATEGORY_STOP_PREFIXES: tuple[str, ...] = ("STOP", "UNSUBSCRIBE", "إيقاف", "أوقف", "توقف")


def fixed_forms(
    keywords: Mapping[Intent, tuple[str, ...]], languages: Mapping[str, tuple[str, ...]]
) -> Mapping[str, KeywordMatch]:
    """Each keyword's normalised form and what it means; refused if two meanings share one."""
    entries = [(word, KeywordMatch(intent=i)) for i, words in keywords.items() for word in words]
    entries += [
        (word, KeywordMatch(intent=Intent.LANGUAGE, language=code))
        for code, words in languages.items()
        for word in words
    ]
    forms: dict[str, KeywordMatch] = {}
    for word, match in entries:
        form = normalise(word)
        # Two intents sharing a normalised form would make one of them unreachable.
        if forms.get(form, match) != match:
            raise ValueError(f"keyword {word!r} normalises to {form!r}, already {forms[form]}")
        forms[form] = match
    return MappingProxyType(forms)


_FORMS: Mapping[str, KeywordMatch] = fixed_forms(KEYWORDS, LANGUAGE_KEYWORDS)
_STOP_PREFIXES: tuple[str, ...] = tuple(normalise(p) for p in CATEGORY_STOP_PREFIXES)


def category_terms(category: Category) -> frozenset[str]:
    """The normalised words that name a category after a stop prefix: id, keywords, titles."""
    return _normalised_terms((category.id, *category.keywords, *category.title.values()))


@lru_cache(maxsize=256)
def _normalised_terms(words: tuple[str, ...]) -> frozenset[str]:
    # Every message asks, and a catalog's words do not change while it runs.
    return frozenset(form for form in map(normalise, words) if form)


def _stopped_category(form: str, catalog: Catalog) -> str | None:
    for prefix in _STOP_PREFIXES:
        if form.startswith(prefix + " "):
            rest = form[len(prefix) + 1 :]
            for category in catalog.categories:
                if rest in category_terms(category):
                    return category.id
    return None


def match_keyword(text: str, catalog: Catalog) -> KeywordMatch | None:
    """The keyword the whole message is, or None: inside a sentence it is no keyword (C06)."""
    form = normalise(text)
    if not form:
        return None
    match = _FORMS.get(form)
    if match is not None:
        if match.intent is Intent.LANGUAGE and match.language not in catalog.company.languages:
            return None
        return match
    category_id = _stopped_category(form, catalog)
    if category_id is not None:
        return KeywordMatch(intent=Intent.STOP_CATEGORY, category_id=category_id)
    return None
