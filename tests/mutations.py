"""Hypothesis strategies that damage a valid JSON body the ways a hostile or broken sender would.

A mutation picks a place anywhere in the document and replaces, removes, renames, duplicates or
adds something there. Values come from a palette of what breaks storage and parsers: lengths
just past each column's limit, NUL, numbers JSON cannot hold (spliced in as raw text, since
json.dumps never writes them), nesting deeper than any payload, wrong types, absurd timestamps.
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass
from typing import Any

from hypothesis import strategies as st

from storage import limits


@dataclass(frozen=True, slots=True)
class Raw:
    """JSON text written as it is in place of a value: what json.dumps would refuse to write."""

    literal: bytes


RAW_LITERALS = [
    b"NaN",
    b"Infinity",
    b"-Infinity",
    b"1e999",
    b"-1e999",
    b"9" * 5000,
    b"-" + b"9" * 4400,
    b"1" + b"0" * 400,
    b'"\\ud800"',
    b'"a\\udfffb"',
    b'"\\u0000"',
    b'"\\ud83d\\ude00"',
]


def _nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = [value] if level % 2 else {"n": value}
    return value


_PAST_LIMITS = sorted(
    {
        n + extra
        for n in (
            limits.WA_ID,
            limits.USER_ID,
            limits.COUNTRY_CODE,
            limits.MESSAGE_TYPE,
            limits.STATUS,
            limits.CHANGE_FIELD,
            limits.PROFILE_NAME,
            limits.WAMID,
            limits.ERROR_TITLE,
            limits.CATEGORY_ID,
        )
        for extra in (0, 1)
    }
)

PALETTE: list[Any] = [
    None,
    True,
    False,
    0,
    -1,
    2**63,
    -(2**63) - 1,
    2**70,
    1.5,
    -0.0,
    "",
    " ",
    "a\x00b",
    "\x00",
    "٣٤",
    "9" * 30,
    "1750000000",
    "0",
    "-5",
    "١٧٥٠٠٠٠٠٠٠",
    "\u202e\u200f",
    "😀" * 300,
    "x" * 20_000,
    "STOP",
    "optin:yes",
    "cat:orders:yes",
    {},
    [],
    [[[]]],
    {"\x00": 1},
    *("x" * n for n in _PAST_LIMITS),
    *(Raw(literal) for literal in RAW_LITERALS),
    _nested(40),
    _nested(150),
]

values = st.one_of(
    st.sampled_from(PALETTE),
    st.text(max_size=40),
    st.integers(),
    st.floats(allow_nan=False, allow_infinity=False),
    st.dictionaries(st.text(max_size=8), st.text(max_size=8), max_size=3),
)


def _places(document: Any, path: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every path in the document, containers and leaves alike, down to a depth that keeps
    deep values from being nested in each other past what recursion allows."""
    found = [path]
    if len(path) >= 24:
        return found
    if isinstance(document, dict):
        for key, child in document.items():
            found += _places(child, (*path, key))
    elif isinstance(document, list):
        for index, child in enumerate(document):
            found += _places(child, (*path, index))
    return found


def _parent(document: Any, path: tuple[Any, ...]) -> Any:
    for step in path[:-1]:
        document = document[step]
    return document


def fresh(draw: st.DrawFn) -> Any:
    # A copy: the palette's containers are shared, and a later mutation may change this one.
    return copy.deepcopy(draw(values))


OPERATIONS = ("replace", "replace", "replace", "delete", "rename", "duplicate", "add")


@st.composite
def mutated(draw: st.DrawFn, document: Any, *, keep: int = 0) -> Any:
    """A deep copy of document with one to four mutations, none above depth ``keep``."""
    document = copy.deepcopy(document)
    for _ in range(draw(st.integers(1, 4))):
        places = [p for p in _places(document) if len(p) > keep]
        if not places:
            break
        path = draw(st.sampled_from(places))
        parent = _parent(document, path)
        operation = draw(st.sampled_from(OPERATIONS))
        key = path[-1]
        if operation == "replace":
            parent[key] = fresh(draw)
        elif operation == "delete":
            del parent[key]
        elif operation == "duplicate" and isinstance(parent, list):
            parent.insert(key, copy.deepcopy(parent[key]))
        elif operation == "rename" and isinstance(parent, dict):
            parent[draw(st.sampled_from(["", "\x00", "x" * 300, "id", "type"]))] = parent.pop(key)
        elif operation == "add" and isinstance(parent[key], dict):
            parent[key][draw(st.text(max_size=12))] = fresh(draw)
        elif operation == "add" and isinstance(parent[key], list):
            parent[key].append(fresh(draw))
        else:
            parent[key] = fresh(draw)
    return document


def dumps(document: Any) -> bytes:
    """The document as Meta writes it (compact, non-ASCII escaped), with Raw values spliced in."""
    spliced: list[bytes] = []

    def placeholder(value: Any) -> str:
        if not isinstance(value, Raw):
            raise TypeError(f"cannot write {type(value).__name__}")
        spliced.append(value.literal)
        return f"@@RAW{len(spliced) - 1}@@"

    text = json.dumps(document, ensure_ascii=True, separators=(",", ":"), default=placeholder)
    raw = text.encode("ascii")
    for index, literal in enumerate(spliced):
        raw = raw.replace(f'"@@RAW{index}@@"'.encode(), literal, 1)
    return raw
