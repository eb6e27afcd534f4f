"""Customer-facing texts, one TOML file per language in flows/texts/, read once as package data."""

from __future__ import annotations

import tomllib
from collections.abc import Mapping
from importlib.resources import files
from string import Formatter
from types import MappingProxyType


def load_texts() -> Mapping[str, Mapping[str, str]]:
    """Every flows/texts/<language>.toml, read-only, by language code."""
    tables: dict[str, Mapping[str, str]] = {}
    for entry in (files("flows") / "texts").iterdir():
        if entry.name.endswith(".toml"):
            table = tomllib.loads(entry.read_text(encoding="utf-8"))
            tables[entry.name.removesuffix(".toml")] = MappingProxyType(table)
    return MappingProxyType(tables)


# Package data, constant for the life of the process: no I/O happens once imported.
TEXTS: Mapping[str, Mapping[str, str]] = load_texts()
LANGUAGES: frozenset[str] = frozenset(TEXTS)


def placeholders(template: str) -> frozenset[str]:
    """The {names} a template expects."""
    return frozenset(name for _, name, _, _ in Formatter().parse(template) if name)


def text(language: str, key: str, **values: str) -> str:
    """The text `key` in `language`, its placeholders filled in. Unknown names raise KeyError."""
    return TEXTS[language][key].format(**values)
