"""Rows sent to PostgreSQL as one JSON document: times come back as the instants they were,
a naive time is refused, and an integer past 64 bits still goes through."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta, timezone

import pytest
from sqlalchemy import text
from sqlalchemy.engine import Engine

from storage.db import make_engine
from storage.json_rows import document

TIMES = [
    datetime(2026, 3, 2, 9, 0, 0, 123456, tzinfo=UTC),
    datetime(2026, 3, 2, 9, 0, tzinfo=UTC),  # no microseconds
    datetime(2026, 3, 2, 11, 30, tzinfo=timezone(timedelta(hours=2, minutes=30))),
]


@pytest.fixture
def postgres(postgres_url: str) -> Iterator[Engine]:
    engine = make_engine(postgres_url)
    yield engine
    engine.dispose()


@pytest.mark.postgres
@pytest.mark.parametrize("big", [None, 2**70])  # orjson writes the one, the standard library both
def test_times_in_a_document_are_read_back_as_the_same_instants(
    postgres: Engine, big: int | None
) -> None:
    rows = [{"n": n, "at": at, "big": big} for n, at in enumerate(TIMES)]
    with postgres.connect() as connection:
        read = connection.execute(
            text(
                "SELECT n, at FROM json_to_recordset(CAST(:doc AS json))"
                " AS v(n int, at timestamptz, big numeric) ORDER BY n"
            ),
            {"doc": document(rows)},
        ).all()
    assert [at for _, at in read] == TIMES


def test_a_naive_time_is_refused() -> None:
    with pytest.raises(ValueError, match="naive datetime"):
        document([{"at": datetime(2026, 3, 2, 9, 0)}])
    with pytest.raises(ValueError, match="naive datetime"):
        document([{"at": datetime(2026, 3, 2, 9, 0), "big": 2**70}])


def test_times_are_written_as_iso_text() -> None:
    written = json.loads(document([{"at": at} for at in TIMES]))
    assert [row["at"] for row in written] == [at.isoformat() for at in TIMES]
