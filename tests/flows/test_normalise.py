"""The normaliser: CONTRACT section 4, as customers actually type."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flows.normalise import is_arabic, normalise

RLM = "\u200f"


@pytest.mark.parametrize(
    ("typed", "expected"),
    [
        (" stop ", "stop"),
        ("Stop!", "stop"),
        ("Ｓｔｏｐ", "stop"),  # full-width, NFKC
        ("STOP", "stop"),
        ("stop 🛑", "stop"),
        ("🙏 stop please!!", "stop please"),
        ("OPT-OUT", "opt out"),
        ("opt–out", "opt out"),  # en dash
        ("stop\t\n all", "stop all"),
        ("إِلْغَاء", "الغاء"),  # harakat
        ("ـإلغـاء", "الغاء"),  # tatweel
        (f"{RLM}الغاء{RLM}", "الغاء"),  # bidi marks around
        ("إلغاء الاشتراك", "الغاء الاشتراك"),
        ("الإعدادات", "الاعدادات"),
        ("ابدأ", "ابدا"),
        ("آمين", "امين"),
        ("ٱلعروض", "العروض"),  # alef wasla
        ("مستشفى", "مستشفي"),  # alef maqsura
        ("مساعدة", "مساعده"),  # teh marbuta
        ("مساعدة؟", "مساعده"),  # Arabic question mark
        ("«توقف»", "توقف"),  # guillemets, as quoted in our own texts
        ("١٢٣٤٥٦٧٨٩٠", "1234567890"),  # Arabic-Indic digits
        ("۱۲۳۴۵۶۷۸۹۰", "1234567890"),  # Persian digits
        ("ﻻ", "لا"),  # presentation-form ligature, NFKC
        ("Straße", "strasse"),  # casefold, not lower
        ("", ""),
        ("  !!! 🎉 ", ""),
    ],
)
def test_normalise_examples(typed: str, expected: str) -> None:
    assert normalise(typed) == expected


@pytest.mark.parametrize(
    "mark",
    [
        *(chr(cp) for cp in range(0x0610, 0x061B)),  # small Arabic signs
        *(chr(cp) for cp in range(0x064B, 0x0660)),  # harakat and Arabic combining marks
        "\u0670",  # superscript alef
        *(chr(cp) for cp in range(0x06D6, 0x06EE)),  # Quranic marks
        "\u0640",  # tatweel
        "\u061c",  # Arabic letter mark
        "\u200b",
        "\u200c",
        "\u200d",  # zero-width space, non-joiner, joiner
        "\u200e",
        "\u200f",  # LRM, RLM
        *(chr(cp) for cp in range(0x202A, 0x202F)),  # embeddings and overrides
        *(chr(cp) for cp in range(0x2066, 0x206A)),  # isolates
        "\ufeff",
    ],
)
def test_c05_marks_inside_a_word_are_removed_without_splitting_it(mark: str) -> None:
    assert normalise(f"توق{mark}ف") == "توقف"


def test_c05_hyphen_separates_words_so_opt_out_forms_meet() -> None:
    assert normalise("OPT-OUT") == normalise("opt out") == normalise("  Opt   Out! ")


def test_decomposed_alef_with_hamza_folds_like_the_composed_one() -> None:
    assert normalise("\u0627\u0654\u064a\u0642\u0627\u0641") == normalise("إيقاف") == "ايقاف"


def test_is_arabic_is_about_most_letters() -> None:
    assert is_arabic("إلغاء")
    assert is_arabic("أريد العروض please")
    assert is_arabic("نعم 👍 123")
    assert not is_arabic("stop")
    assert not is_arabic("please stop the العروض messages now")
    assert not is_arabic("123 !!!")
    assert not is_arabic("")


_DROPPED_CATEGORIES = ("Cc", "Cf", "Me")


@given(st.text())
def test_normalise_is_idempotent(text: str) -> None:
    once = normalise(text)
    assert normalise(once) == once


@given(st.text())
def test_normalised_text_has_no_case_punctuation_symbols_marks_or_extra_spaces(text: str) -> None:
    out = normalise(text)
    assert out == out.strip()
    assert "  " not in out
    assert out.casefold() == out
    for ch in out:
        category = unicodedata.category(ch)
        assert category[0] not in "PS", ch
        assert category not in _DROPPED_CATEGORIES, ch
        assert ch.isspace() is (ch == " "), ch
        assert not 0x064B <= ord(ch) <= 0x065F and ch not in "\u0640\u0670", ch
        assert ch not in "أإآٱىة", ch
        assert not 0x0660 <= ord(ch) <= 0x0669 and not 0x06F0 <= ord(ch) <= 0x06F9, ch


@given(st.integers(min_value=0, max_value=10**12), st.sampled_from([0x0660, 0x06F0]))
def test_eastern_digits_read_as_western(number: int, zero: int) -> None:
    eastern = "".join(chr(zero + int(d)) for d in str(number))
    assert normalise(eastern) == str(number)


@given(st.lists(st.sampled_from(["stop", "الغاء", "نعم", "offers"]), min_size=1, max_size=5))
def test_words_survive_any_mix_of_separators(words: list[str]) -> None:
    joined = " ,- 🛑 ".join(words)
    assert normalise(joined) == " ".join(words)


def test_c05_invisible_format_characters_and_keycap_marks_do_not_split_a_keyword() -> None:
    # A soft hyphen and a word joiner (format characters), a keycap (an enclosing mark).
    assert normalise("S\u00adT\u2060OP") == "stop"
    assert normalise("STOP\u20e3") == "stop"
    assert normalise("1\ufe0f\u20e3") == "1"


@pytest.mark.parametrize(
    ("text", "arabic"),
    [("ب", True), ("ok ب", False), ("a بت", True), ("ab بت", False), ("", False), ("123 !", False)],
)
def test_c11_arabic_is_read_when_most_of_the_letters_are_arabic(text: str, arabic: bool) -> None:
    assert is_arabic(text) is arabic
