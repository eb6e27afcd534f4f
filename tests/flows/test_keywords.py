"""Keywords (CONTRACT section 4): the whole message, after normalisation, from any spelling."""

from __future__ import annotations

from dataclasses import replace

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.catalog import Catalog
from flows.keywords import (
    KEYWORDS,
    LANGUAGE_KEYWORDS,
    Intent,
    KeywordMatch,
    fixed_forms,
    match_keyword,
)
from flows.normalise import normalise
from flows.stop_words import Reading, StopReading, read_stop

# Written out from the contract, independently of the module's table.
CONTRACT_TABLE: list[tuple[str, Intent]] = [
    *(
        (word, Intent.STOP_ALL)
        for word in (
            "STOP",
            "STOPALL",
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
            "إلغاء",
            "إلغاء الاشتراك",
        )
    ),
    *((word, Intent.START) for word in ("START", "UNSTOP", "SUBSCRIBE", "ابدأ", "اشتراك", "اشترك")),
    *((word, Intent.HELP) for word in ("HELP", "INFO", "مساعدة")),
    *((word, Intent.PREFERENCES) for word in ("PREFERENCES", "SETTINGS", "الإعدادات", "تفضيلات")),
    *((word, Intent.YES) for word in ("yes", "Yes", "y", "نعم")),
    *((word, Intent.NO) for word in ("no", "NO", "n", "لا")),
]

CATEGORY_STOPS: list[tuple[str, str]] = [
    ("stop offers", "offers"),
    ("STOP offer", "offers"),
    ("Stop promotions", "offers"),
    ("stop orders", "orders"),
    ("stop order updates", "orders"),  # the title
    ("إيقاف العروض", "offers"),
    ("ايقاف العروض", "offers"),
    ("إيقاف الطلبات", "orders"),
    ("إيقاف تحديثات الطلبات", "orders"),  # the Arabic title
    ("unsubscribe offers", "offers"),
]

NOT_KEYWORDS = [
    "we must stop this",
    "don't stop",
    "can you help me",
    "yes please send the cake",
    "I said no to that",
    "cancel order",  # a bakery order, not order updates
    "stop cake",
    "نعم أريد الكعكة",
    "لا أريد",
    "إيقاف الكعك",
    "",
    "!!!",
    "🛑",
]


@pytest.mark.parametrize(("typed", "intent"), CONTRACT_TABLE)
def test_c05_every_contract_keyword_matches_its_intent(
    typed: str, intent: Intent, catalog: Catalog
) -> None:
    assert match_keyword(typed, catalog) == KeywordMatch(intent=intent)


@pytest.mark.parametrize(
    "typed",
    [
        " stop ",
        "Stop!",
        "Ｓｔｏｐ",
        "إِلْغَاء",
        "ـإلغـاء",
        "\u200fالغاء\u200f",
        "الغاء الاشتراك",
        "opt out",
    ],
)
def test_c05_stop_as_customers_type_it(typed: str, catalog: Catalog) -> None:
    assert match_keyword(typed, catalog) == KeywordMatch(intent=Intent.STOP_ALL)


@pytest.mark.parametrize(("typed", "category_id"), CATEGORY_STOPS)
def test_c08_stop_with_a_category_keyword_or_title(
    typed: str, category_id: str, catalog: Catalog
) -> None:
    expected = KeywordMatch(intent=Intent.STOP_CATEGORY, category_id=category_id)
    assert match_keyword(typed, catalog) == expected


@pytest.mark.parametrize("typed", NOT_KEYWORDS)
def test_c06_keyword_inside_a_sentence_is_not_a_keyword(typed: str, catalog: Catalog) -> None:
    assert match_keyword(typed, catalog) is None


# Listed with the sentences above until C21: still no keyword, but a clear stop in the
# customer's own words, which withdraws like STOP (flows.stop_words).
@pytest.mark.parametrize("typed", ["please stop sending", "stop it now"])
def test_c21_a_stop_in_own_words_is_no_keyword_but_is_read_as_a_stop(
    typed: str, catalog: Catalog
) -> None:
    assert match_keyword(typed, catalog) is None
    assert read_stop(typed, catalog) == StopReading(Reading.STOP)


@pytest.mark.parametrize(
    ("typed", "language"),
    [("English", "en"), ("ENGLISH", "en"), ("arabic", "ar"), ("العربية", "ar"), ("عربي", "ar")],
)
def test_c11_language_keywords(typed: str, language: str, catalog: Catalog) -> None:
    assert match_keyword(typed, catalog) == KeywordMatch(intent=Intent.LANGUAGE, language=language)


def test_c11_a_language_the_company_does_not_use_is_no_keyword(catalog: Catalog) -> None:
    english_only = replace(catalog, company=replace(catalog.company, languages=("en",)))
    assert match_keyword("العربية", english_only) is None
    assert match_keyword("english", english_only) == KeywordMatch(
        intent=Intent.LANGUAGE, language="en"
    )


def test_stop_all_wins_over_a_category_called_all(catalog: Catalog) -> None:
    assert match_keyword("stop all", catalog) == KeywordMatch(intent=Intent.STOP_ALL)


# Every form in the module's tables, each reachable (no two intents share a normalised form).
ALL_FORMS: list[tuple[str, KeywordMatch]] = [
    *((word, KeywordMatch(intent=intent)) for intent, words in KEYWORDS.items() for word in words),
    *(
        (word, KeywordMatch(intent=Intent.LANGUAGE, language=code))
        for code, words in LANGUAGE_KEYWORDS.items()
        for word in words
    ),
    *(
        (typed, KeywordMatch(intent=Intent.STOP_CATEGORY, category_id=cid))
        for typed, cid in CATEGORY_STOPS
    ),
]


@pytest.mark.parametrize(("typed", "expected"), ALL_FORMS)
def test_every_table_form_is_reachable(
    typed: str, expected: KeywordMatch, catalog: Catalog
) -> None:
    assert match_keyword(typed, catalog) == expected


def test_contract_table_is_contained_in_the_module_table() -> None:
    module_forms = {normalise(w): i for i, words in KEYWORDS.items() for w in words}
    for typed, intent in CONTRACT_TABLE:
        assert module_forms[normalise(typed)] is intent


# --- properties ----------------------------------------------------------------------------

HARAKAT = [chr(cp) for cp in range(0x064B, 0x0653)] + ["\u0670", "\u0640"]  # and tatweel
WRAPPERS = [*" \t\n!?.,;:…¡¿،؟«»\"'()-🛑👍🏽✋🙏❤️", "\u200f", "\u200e", "\u2066", "\u2069"]


def _is_arabic_letter(ch: str) -> bool:
    return "\u0621" <= ch <= "\u064a"


@st.composite
def decorated(draw: st.DrawFn, word: str) -> str:
    """The word as a customer might send it: any case, diacritics, tatweel, and noise around it."""
    out: list[str] = []
    for ch in word:
        out.append(ch.upper() if draw(st.booleans()) else ch.lower())
        if _is_arabic_letter(ch) and draw(st.booleans()):
            out.append(draw(st.sampled_from(HARAKAT)))
    noise = st.text(alphabet=st.sampled_from(WRAPPERS), max_size=4)
    return draw(noise) + "".join(out) + draw(noise)


@given(data=st.data(), case=st.sampled_from(ALL_FORMS))
def test_c05_every_keyword_survives_case_spacing_punctuation_emoji_and_diacritics(
    data: st.DataObject, case: tuple[str, KeywordMatch], catalog: Catalog
) -> None:
    word, expected = case
    typed = data.draw(decorated(word))
    assert match_keyword(typed, catalog) == expected


# Ordinary words: none is a keyword or a category name, and no two of them make one.
VOCABULARY = [
    "we",
    "must",
    "this",
    "please",
    "sending",
    "don't",
    "cake",
    "bread",
    "tomorrow",
    "my",
    "is",
    "late",
    "why",
    "did",
    "you",
    "أريد",
    "كعكة",
    "غدا",
    "لماذا",
    "الخبز",
    "من",
    "فضلك",
    "متى",
]


@given(
    data=st.data(),
    keyword=st.sampled_from([word for word, _ in ALL_FORMS]),
    words=st.lists(st.sampled_from(VOCABULARY), min_size=1, max_size=6),
)
def test_c06_no_keyword_is_found_inside_an_ordinary_sentence(
    data: st.DataObject, keyword: str, words: list[str], catalog: Catalog
) -> None:
    position = data.draw(st.integers(min_value=0, max_value=len(words)))
    sentence = " ".join([*words[:position], keyword, *words[position:]])
    assert match_keyword(sentence, catalog) is None


def test_vocabulary_is_really_ordinary(catalog: Catalog) -> None:
    # Guards the property above against a vocabulary word that is itself a keyword.
    assert all(match_keyword(word, catalog) is None for word in VOCABULARY)


def test_c05_the_keyword_table_gives_every_word_its_meaning_after_normalisation() -> None:
    forms = fixed_forms(KEYWORDS, LANGUAGE_KEYWORDS)
    expected = {
        normalise(w): KeywordMatch(intent=i) for i, words in KEYWORDS.items() for w in words
    }
    expected |= {
        normalise(w): KeywordMatch(intent=Intent.LANGUAGE, language=code)
        for code, words in LANGUAGE_KEYWORDS.items()
        for w in words
    }
    assert dict(forms) == expected
    assert forms[normalise("إلغاء")] == KeywordMatch(intent=Intent.STOP_ALL)
    assert forms[normalise("العربية")] == KeywordMatch(intent=Intent.LANGUAGE, language="ar")
    with pytest.raises(TypeError):
        forms["stop"] = KeywordMatch(intent=Intent.START)  # type: ignore[index]


def test_two_meanings_sharing_a_normalised_form_are_refused() -> None:
    # "Stop!" normalises to "stop": as a START it would make one of the two unreachable.
    clash = {Intent.STOP_ALL: ("STOP",), Intent.START: ("Stop!",)}
    with pytest.raises(ValueError, match="'Stop!' normalises to 'stop', already"):
        fixed_forms(clash, {})
    language_clash = {Intent.HELP: ("ENGLISH",)}
    with pytest.raises(ValueError, match="normalises to 'english'"):
        fixed_forms(language_clash, {"en": ("English",)})
    # The same meaning spelt twice is no clash.
    same = fixed_forms({Intent.STOP_ALL: ("STOP", "stop!")}, {})
    assert dict(same) == {"stop": KeywordMatch(intent=Intent.STOP_ALL)}
