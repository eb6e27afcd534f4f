"""Benchmarks: timed runs against real services, reported as a table; never part of the tests.

Run them all with `python -m tests.bench` (or `make bench`), or one by name:
`python -m tests.bench audience`.
"""

from __future__ import annotations

import os
from dataclasses import dataclass

from sqlalchemy import text
from sqlalchemy.engine import make_url


def postgres_url() -> str:
    return os.environ.get("TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test")


def redis_url() -> str:
    return os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def schema_url(url: str, schema: str) -> str:
    """The same database with a benchmark's own schema first on search_path (psycopg `options`),
    so a benchmark never touches the tests' `public` schema."""
    parsed = make_url(url)
    return parsed.update_query_dict({"options": f"-csearch_path={schema}"}).render_as_string(
        hide_password=False
    )


def fresh_schema(url: str, schema: str) -> str:
    """An empty schema at the newest migration; its URL."""
    from storage import migrate
    from storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {schema} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {schema}"))
    finally:
        engine.dispose()
    bench = schema_url(url, schema)
    migrate.upgrade(bench)
    return bench


def settle(url: str, tables: tuple[str, ...]) -> None:
    """Bring freshly bulk-loaded tables to the state a live database keeps them in, before a
    run is measured on them: VACUUM ANALYZE them, as pgbench vacuums before its runs, then
    CHECKPOINT. Loaded seconds before, hundreds of thousands of rows leave shared buffers full
    of dirty pages, which the first requests would otherwise pay to write out as they evict
    them, and tables with no statistics yet."""
    from storage.db import make_engine

    engine = make_engine(url)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            connection.execute(text(f"VACUUM (ANALYZE) {', '.join(tables)}"))
            connection.execute(text("CHECKPOINT"))
    finally:
        engine.dispose()


@dataclass(frozen=True, slots=True)
class Result:
    benchmark: str
    figure: str
    value: float
    unit: str
    goal: str
    met: bool


def table(results: list[Result]) -> str:
    header = ("benchmark", "figure", "value", "goal", "met")
    rows = [
        (r.benchmark, r.figure, f"{_number(r.value)} {r.unit}", r.goal, "yes" if r.met else "NO")
        for r in results
    ]
    widths = [max(len(str(cell)) for cell in column) for column in zip(header, *rows, strict=True)]
    lines = [" | ".join(cell.ljust(w) for cell, w in zip(header, widths, strict=True))]
    lines.append("-+-".join("-" * w for w in widths))
    lines += [" | ".join(str(c).ljust(w) for c, w in zip(row, widths, strict=True)) for row in rows]
    return "\n".join(lines)


def _number(value: float) -> str:
    """Ratios keep three decimals; rates and sizes one."""
    return f"{value:,.3f}" if abs(value) < 10 else f"{value:,.1f}"
