"""A SQLAlchemy select as the text and values libpq is sent (storage.libpq_pipeline), and its
rows as SQLAlchemy returns them: each column's value through its type's result processor.

A list parameter becomes one placeholder per value, as SQLAlchemy expands it. Expanding it on
every call cost a returning customer's message five expansions; the text, the query's own
constant values and each parameter's placeholders are worked out once per query and list
lengths, by passing stand-in values through SQLAlchemy's own expansion.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from sqlalchemy import Select
from sqlalchemy.engine import Dialect
from sqlalchemy.sql.compiler import SQLCompiler
from sqlalchemy.types import TypeEngine


def as_text(
    query: Select[Any], dialect: Dialect, params: Mapping[str, object]
) -> tuple[str, dict[str, object]]:
    """The query's text for these parameters, and the values by placeholder."""
    shape = tuple(
        (name, len(value) if isinstance(value, list | tuple) else None)
        for name, value in sorted(params.items())
    )
    sql, constants, placeholders = _expansion(query, dialect, shape)
    values = dict(constants)
    for name, value in params.items():
        if isinstance(value, list | tuple):
            values.update(zip(placeholders[name], value, strict=True))
        else:
            values[placeholders[name][0]] = value
    return sql, values


@dataclass(frozen=True, slots=True)
class _Probe:
    """Stands for a parameter's value while its placeholders are found."""

    name: str
    index: int


@lru_cache(maxsize=256)
def _expansion(
    query: Select[Any], dialect: Dialect, shape: tuple[tuple[str, int | None], ...]
) -> tuple[str, dict[str, object], dict[str, list[str]]]:
    """The text, the query's own constant values, and each parameter's placeholders in order."""
    compiled: SQLCompiler = query.compile(dialect=dialect)  # type: ignore[assignment]
    probes = {
        name: _Probe(name, 0) if count is None else [_Probe(name, i) for i in range(count)]
        for name, count in shape
    }
    state = compiled.construct_expanded_state(probes)
    constants: dict[str, object] = {}
    found: dict[str, dict[int, str]] = {}
    for placeholder, value in state.parameters.items():
        if isinstance(value, _Probe):
            found.setdefault(value.name, {})[value.index] = placeholder
        else:
            constants[placeholder] = value
    placeholders = {name: [at[i] for i in sorted(at)] for name, at in found.items()}
    return state.statement, constants, placeholders


def processed(
    query: Select[Any], dialect: Dialect, rows: Iterable[Sequence[Any]]
) -> list[tuple[Any, ...]]:
    """The driver's rows of the query as SQLAlchemy returns them."""
    processors = _processors(query, dialect)
    return [
        tuple(
            value if process is None else process(value)
            for process, value in zip(processors, row, strict=True)
        )
        for row in rows
    ]


@lru_cache(maxsize=64)
def _processors(query: Select[Any], dialect: Dialect) -> tuple[Callable[[Any], Any] | None, ...]:
    """What SQLAlchemy does to each column's value as the driver returns it."""
    return tuple(result_reader(column.type, dialect) for column in query.selected_columns)


def result_reader(type_: TypeEngine[Any], dialect: Dialect) -> Callable[[Any], Any] | None:
    """What SQLAlchemy does to a value of this type as the dialect's driver returns it."""
    return type_.dialect_impl(dialect).result_processor(dialect, None)
