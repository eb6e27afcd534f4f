"""Fixtures of the storage tests."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
from sqlalchemy.engine import Engine

from storage.db import make_engine


@pytest.fixture
def postgres_engines(postgres_url: str) -> Iterator[Callable[[], Engine]]:
    """Makes engines as the app makes its own, on the tests' PostgreSQL schema; each is
    disposed of when the test ends."""
    made: list[Engine] = []

    def make() -> Engine:
        made.append(make_engine(postgres_url))
        return made[-1]

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def other_engine(postgres_engines: Callable[[], Engine]) -> Engine:
    """A second engine, to look at a first one's backends from, or end them."""
    return postgres_engines()
