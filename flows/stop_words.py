"""Stops in the customer's own words (C21): does a message ask us to stop, may it be asking, or
is it about something else? The vocabulary is data, in flows/stop_words.toml; this module only
compiles its patterns and reads a message with them.

A message is read after normalise(). Each category's words (id, keywords, titles) are first
replaced by a marker, so that one pattern serves every configured category and "no more offers"
names the category the way "STOP offers" does. Then, in this order:
1. stop: the whole message, give or take courtesy words at either end, clearly asks to stop;
2. other: the message is about stopping something else ("don't stop my orders"): nothing;
3. ask: the whole message may be asking to stop: the one-tap question.
Stop comes first because its patterns are anchored on the whole message: a sentence about
something else cannot be one, while the guards of "other" are looser and would hide real stops.
"""

from __future__ import annotations

import re
import tomllib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from functools import lru_cache
from importlib.resources import files
from types import MappingProxyType

from flows.catalog import Catalog, Category
from flows.keywords import category_terms
from flows.normalise import normalise

# A marker stands for a category in the text the stop and ask patterns read. normalise() turns
# "§" into a space, so no customer can type one.
_MARKER = "§"
_CATEGORY_RUN = rf"((?:{_MARKER}\d+ )(?:(?:and |or )?{_MARKER}\d+ )*)"
# A message longer than this is a conversation, not a request: it keeps the patterns cheap.
MAX_WORDS = 40
# Arabic categories are often named without their article: "ما بدي عروض" for "العروض".
_ARABIC_ARTICLE = "ال"


class Reading(StrEnum):
    STOP = "stop"  # clearly asks us to stop: withdraw
    ASK = "ask"  # may be asking to stop: ask with one tap
    NONE = "none"  # about something else, or nothing to do with stopping


@dataclass(frozen=True, slots=True)
class StopReading:
    reading: Reading
    categories: tuple[str, ...] = ()  # the categories it names, in catalog order


NOT_A_STOP = StopReading(Reading.NONE)


@dataclass(frozen=True, slots=True)
class Vocabulary:
    stop: tuple[re.Pattern[str], ...]
    other: tuple[re.Pattern[str], ...]
    ask: tuple[re.Pattern[str], ...]
    # One courtesy phrase ("please", "من فضلك") at the start, and at the end, of a text. They
    # are peeled off before matching rather than compiled into every pattern: that would make
    # importing the vocabulary several times slower.
    courtesy_head: re.Pattern[str]
    courtesy_tail: re.Pattern[str]
    # All of stop's, and all of ask's, patterns in one expression: most messages are no stop,
    # and one call in C tells so for a core, where trying each pattern in turn took a hundred
    # and forty calls a message. Compiling them adds about a tenth of a second to the import.
    any_stop: re.Pattern[str]
    any_ask: re.Pattern[str]

    def cores(self, text: str) -> list[str]:
        """The text, and what is left of it without courtesy words at either end, longest
        first: the whole-message patterns are tried on each."""
        starts = [0]
        while match := self.courtesy_head.match(text, starts[-1]):
            starts.append(match.end())
        ends = [len(text)]
        while match := self.courtesy_tail.search(text, 0, ends[-1]):
            ends.append(match.start())
        cuts = sorted(((s, e) for s in starts for e in ends if s < e), key=lambda c: c[0] - c[1])
        return [text[s:e] for s, e in cuts]


def _any_of(patterns: Sequence[re.Pattern[str]]) -> re.Pattern[str]:
    """An expression that fully matches a text when one of the patterns does."""
    return re.compile("|".join(f"(?:{p.pattern})" for p in patterns) or "(?!)")


def _alternation(phrases: Sequence[str]) -> str:
    forms = sorted({normalise(p) for p in phrases} - {""}, key=lambda f: (-len(f), f))
    return "|".join(re.escape(f) for f in forms)


class _Compiler:
    """Turns the pattern notation of stop_words.toml into regular expressions over a text whose
    words are each followed by one space."""

    def __init__(self, words: Mapping[str, Sequence[str]]) -> None:
        self.words = words

    def _alternative(self, alternative: str) -> str:
        if alternative.startswith("{") and alternative.endswith("}"):
            name = alternative[1:-1]
            if name == "category":
                return _CATEGORY_RUN
            return f"(?:{_alternation(self.words[name])}) "
        return f"{re.escape(normalise(alternative))} "

    def item(self, item: str) -> str:
        if item == "...":
            return r"(?:\S+ )*?"
        if item == "*":
            return r"\S+ "
        if item.startswith("!"):
            return f"(?!{'|'.join(self._alternative(a) for a in item[1:].split('|'))})"
        suffix = item[-1] if item[-1] in "?+" and len(item) > 1 else ""
        core = item[: -1 if suffix else None]
        return "(?:" + "|".join(self._alternative(a) for a in core.split("|")) + ")" + suffix

    def whole(self, pattern: str) -> re.Pattern[str]:
        return re.compile("".join(self.item(i) for i in pattern.split()))

    def anywhere(self, pattern: str) -> re.Pattern[str]:
        if "{category}" in pattern:
            raise ValueError(f"an 'other' pattern reads the text unmarked: {pattern!r}")
        return re.compile("(?<![^ ])" + "".join(self.item(i) for i in pattern.split()))


def load_vocabulary(source: str) -> Vocabulary:
    table = tomllib.loads(source)
    courtesy = [w for language in table.values() for w in language["words"].get("courtesy", ())]
    stop: list[re.Pattern[str]] = []
    other: list[re.Pattern[str]] = []
    ask: list[re.Pattern[str]] = []
    for language in table.values():
        compiler = _Compiler(language["words"])
        patterns = language["patterns"]
        stop += [compiler.whole(p) for p in patterns.get("stop", ())]
        other += [compiler.anywhere(p) for p in patterns.get("other", ())]
        ask += [compiler.whole(p) for p in patterns.get("ask", ())]
    phrase = f"(?:{_alternation(courtesy)}) " if courtesy else "(?!)"
    return Vocabulary(
        stop=tuple(stop),
        other=tuple(other),
        ask=tuple(ask),
        courtesy_head=re.compile(phrase),
        courtesy_tail=re.compile(f"(?<![^ ]){phrase}$"),
        any_stop=_any_of(stop),
        any_ask=_any_of(ask),
    )


# Package data, constant for the life of the process: no I/O happens once imported.
VOCABULARY = load_vocabulary((files("flows") / "stop_words.toml").read_text(encoding="utf-8"))


def read_stop(text: str, catalog: Catalog, vocabulary: Vocabulary = VOCABULARY) -> StopReading:
    """What a message says about stopping our messages, and which categories it names."""
    form = normalise(text)
    if not form or form.count(" ") >= MAX_WORDS:
        return NOT_A_STOP
    cores = vocabulary.cores(_mark_categories(form, catalog) + " ")
    match = _first(vocabulary.stop, vocabulary.any_stop, cores)
    if match:
        return StopReading(Reading.STOP, _named(match, catalog))
    if any(pattern.search(form + " ") for pattern in vocabulary.other):
        return NOT_A_STOP
    match = _first(vocabulary.ask, vocabulary.any_ask, cores)
    if match:
        return StopReading(Reading.ASK, _named(match, catalog))
    return NOT_A_STOP


def _first(
    patterns: Sequence[re.Pattern[str]], any_of: re.Pattern[str], cores: Sequence[str]
) -> re.Match[str] | None:
    """The first pattern, in the vocabulary's order, that some core of the message is."""
    if not any(any_of.fullmatch(core) for core in cores):
        return None
    for pattern in patterns:
        for core in cores:
            match = pattern.fullmatch(core)
            if match:
                return match
    return None


def _named(match: re.Match[str], catalog: Catalog) -> tuple[str, ...]:
    """The categories a pattern's {category} matched (words elsewhere in the message do not
    count: "stop messaging me, my order is late" stops everything, not order updates)."""
    indices = {int(i) for run in match.groups() if run for i in re.findall(r"\d+", run)}
    return tuple(c.id for n, c in enumerate(catalog.categories) if n in indices)


def _mark_categories(form: str, catalog: Catalog) -> str:
    pattern, index = _category_pattern(tuple(_terms(c) for c in catalog.categories))
    if pattern is None:
        return form
    return pattern.sub(lambda m: f"{_MARKER}{index[m.group(0)]}", form)


def _terms(category: Category) -> tuple[str, ...]:
    terms = set(category_terms(category))
    for term in tuple(terms):
        bare = term.removeprefix(_ARABIC_ARTICLE)
        if bare != term and " " not in term and len(bare) > 2:
            terms.add(bare)
    return tuple(sorted(terms))


@lru_cache(maxsize=16)
def _category_pattern(
    categories: tuple[tuple[str, ...], ...],
) -> tuple[re.Pattern[str] | None, Mapping[str, int]]:
    """One expression finding every category's words as whole words, the longest first."""
    index: dict[str, int] = {}
    for n, terms in enumerate(categories):
        for term in terms:
            index.setdefault(term, n)
    if not index:
        return None, MappingProxyType(index)
    alternation = "|".join(re.escape(t) for t in sorted(index, key=lambda t: (-len(t), t)))
    return re.compile(rf"(?<![^ ])(?:{alternation})(?![^ ])"), MappingProxyType(index)
