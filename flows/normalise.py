"""Text normalisation for keyword matching (CONTRACT section 4): the way customers actually type."""

from __future__ import annotations

import unicodedata

# Characters deleted outright: they sit inside words, so deleting (not spacing) keeps words whole.
_DELETED_RANGES: tuple[tuple[int, int], ...] = (
    (0x0610, 0x061A),  # small Arabic signs written above or below letters
    (0x0640, 0x0640),  # tatweel (kashida), stretches letters: "ـإلغـاء"
    (0x064B, 0x065F),  # harakat and other Arabic combining marks: "إِلْغَاء"
    (0x0670, 0x0670),  # superscript alef
    (0x06D6, 0x06ED),  # Quranic annotation marks
    (0x061C, 0x061C),  # Arabic letter mark
    (0x200B, 0x200F),  # zero-width space, non-joiner, joiner; LRM, RLM
    (0x202A, 0x202E),  # bidi embeddings and overrides
    (0x2066, 0x2069),  # bidi isolates
    (0xFEFF, 0xFEFF),  # byte order mark / zero-width no-break space
    (0xFE00, 0xFE0F),  # variation selectors (emoji presentation)
)

_FOLDED: dict[str, str] = {
    "أ": "ا",
    "إ": "ا",
    "آ": "ا",
    "ٱ": "ا",
    "ى": "ي",
    "ة": "ه",
    **{chr(0x0660 + d): str(d) for d in range(10)},  # Arabic-Indic digits
    **{chr(0x06F0 + d): str(d) for d in range(10)},  # Persian digits
}

_TABLE: dict[int, str | None] = {
    **{cp: None for start, end in _DELETED_RANGES for cp in range(start, end + 1)},
    **{ord(k): v for k, v in _FOLDED.items()},
}


def _separator_or_kept(ch: str) -> str:
    category = unicodedata.category(ch)
    # Punctuation and symbols (emoji are symbols) separate words: "OPT-OUT" is "opt out".
    if category[0] in "PS" or category == "Cc":
        return " "
    # Other invisible format characters and enclosing marks (emoji keycaps) carry no letters.
    if category in ("Cf", "Me"):
        return ""
    return ch


def normalise(text: str) -> str:
    """The form keywords are compared in: NFKC, case-folded, Arabic spelling variants folded,
    punctuation, emoji and invisible marks dropped, words separated by single spaces."""
    folded = unicodedata.normalize("NFKC", unicodedata.normalize("NFKC", text).casefold())
    folded = folded.translate(_TABLE)
    folded = "".join(_separator_or_kept(ch) for ch in folded)
    # Deleting characters can bring combining marks together: re-compose so the result is stable.
    return " ".join(unicodedata.normalize("NFC", folded).split())


def _is_arabic_letter(ch: str) -> bool:
    return unicodedata.name(ch, "").startswith("ARABIC")


def is_arabic(text: str) -> bool:
    """True when most of the letters in the text are Arabic script."""
    letters = [ch for ch in text if ch.isalpha()]
    arabic = sum(1 for ch in letters if _is_arabic_letter(ch))
    return arabic > 0 and arabic * 2 > len(letters)
