"""The audience export of 1,000,000 contacts on PostgreSQL: rows per second and peak memory.

The data is generated inside PostgreSQL (generate_series) in a schema of its own, `bench`, reached
through search_path, so the tests' `public` schema is never touched. It is kept between runs and
rebuilt only when missing or of another shape. Besides the million contacts granted "offers",
there are contacts that must be left out (withdrawn, awaiting double opt-in confirmation,
granted another category only) so that every filter of the real query is at work, contacts
known only by user id (listed by it), and suppression entries of erased numbers.

The export itself runs in a fresh process, through the real Flask app (create_app, the API's
bearer token, the streaming response read chunk by chunk as a client would), so that its peak
RSS (getrusage) is the export's and not the data generator's.

Goal: at least 200,000 rows/s with peak RSS under 150 MB.
"""

from __future__ import annotations

import multiprocessing
import os
import resource
import sys
import time
from typing import Any
from urllib.parse import quote

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage import migrate
from storage.db import make_engine
from storage.suppression import suppression_digest
from tests.bench import Result, postgres_url, schema_url

CONTACTS = 1_000_000
LEFT_OUT = 10_000  # of each kind that the audience must not contain
SCHEMA = "bench"
MARKER = f"audience bench: {CONTACTS} granted, {LEFT_OUT} of each excluded kind, v2"
SECRET_KEY = "bench-secret-key-of-32-characters-or-more"
TOKEN = "bench-token"
# The export's first line: who is in the audience, by number or business-scoped user id.
HEADER = b"wa_id,user_id,granted_at\n"
GOAL_ROWS_PER_SECOND = 200_000
GOAL_PEAK_RSS_MB = 150
ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def prepare(url: str) -> None:
    """Build the schema and the rows unless an identical build is already there."""
    engine = make_engine(url)
    try:
        with engine.connect() as connection:
            marker = connection.execute(
                text(
                    "SELECT obj_description(oid, 'pg_namespace')"
                    " FROM pg_namespace WHERE nspname = :s"
                ),
                {"s": SCHEMA},
            ).scalar()
        if marker == MARKER:
            print(f"reusing schema {SCHEMA} ({MARKER})", file=sys.stderr)
            return
        with engine.begin() as connection:
            connection.execute(text(f"DROP SCHEMA IF EXISTS {SCHEMA} CASCADE"))
            connection.execute(text(f"CREATE SCHEMA {SCHEMA}"))
    finally:
        engine.dispose()

    bench = schema_url(url, SCHEMA)
    migrate.upgrade(bench)
    engine = make_engine(bench)
    started = time.perf_counter()
    try:
        with engine.begin() as connection:
            _generate(connection)
        with engine.connect() as connection:
            connection.execution_options(isolation_level="AUTOCOMMIT").execute(
                text("VACUUM ANALYZE contact, consent, suppression")
            )
        with engine.begin() as connection:
            connection.execute(text(f"COMMENT ON SCHEMA {SCHEMA} IS '{MARKER}'"))
    finally:
        engine.dispose()
    print(f"generated in {time.perf_counter() - started:.1f}s", file=sys.stderr)


def _generate(connection: Any) -> None:
    total = CONTACTS + 4 * LEFT_OUT
    # Ids 1..CONTACTS are the audience; each following block of LEFT_OUT is one excluded kind:
    # withdrawn, unconfirmed, known by user id only (listed, by user id), granted "orders" only.
    connection.execute(
        text(
            """
            INSERT INTO contact (id, wa_id, user_id, created_at)
            SELECT g,
                   CASE WHEN g <= :n + 2 * :k OR g > :n + 3 * :k
                        THEN (14150000000 + g)::text END,
                   CASE WHEN g > :n + 2 * :k AND g <= :n + 3 * :k THEN 'US.' || g END,
                   now() - interval '400 days'
            FROM generate_series(1, :total) AS g
            """
        ),
        {"n": CONTACTS, "k": LEFT_OUT, "total": total},
    )
    connection.execute(text("SELECT setval('contact_id_seq', :total)"), {"total": total})
    connection.execute(
        text(
            """
            INSERT INTO consent (contact_id, category, granted, source, updated_at, granted_at,
                                 confirmed)
            SELECT g, 'offers',
                   NOT (g > :n AND g <= :n + :k),
                   'web',
                   timestamptz '2025-01-01 00:00:00+00' + g * interval '7 seconds',
                   timestamptz '2025-01-01 00:00:00+00' + g * interval '7 seconds',
                   NOT (g > :n + :k AND g <= :n + 2 * :k)
            FROM generate_series(1, :n + 3 * :k) AS g
            """
        ),
        {"n": CONTACTS, "k": LEFT_OUT},
    )
    # Half the audience also granted another category, so the index has to pick "offers".
    connection.execute(
        text(
            """
            INSERT INTO consent (contact_id, category, granted, source, updated_at, granted_at)
            SELECT g, 'orders', true, 'paper', now(), now()
            FROM generate_series(1, :total) AS g
            WHERE g % 2 = 1 OR g > :n + 3 * :k
            """
        ),
        {"n": CONTACTS, "k": LEFT_OUT, "total": total},
    )
    # Erased numbers leave only their keyed hash behind (their contacts are gone).
    key = SECRET_KEY.encode()
    connection.execute(
        text("INSERT INTO suppression (digest, reason, created_at) VALUES (:d, 'erasure', now())"),
        [{"d": suppression_digest(key, str(19990000000 + g))} for g in range(LEFT_OUT)],
    )


def _export(url: str, queue: Any) -> None:
    """In a fresh process: the app, one warm-up call, then the timed full export."""
    from bot import create_app

    app = create_app(
        {
            "APP_ENV": "production",
            "WHATSAPP_VERIFY_TOKEN": "bench",
            "WHATSAPP_APP_SECRET": "bench",
            "SECRET_KEY": SECRET_KEY,
            "DATABASE_URL": url,
            "OPTIN_CONFIG": os.path.join(ROOT, "optin.toml"),
            "API_TOKENS": TOKEN,
            "RUN_DISPATCHER": "0",
        }
    )
    import logging

    logging.disable(logging.WARNING)
    client = app.test_client()
    headers = {"Authorization": f"Bearer {TOKEN}"}
    warm = client.get("/api/v1/audience?category=lottery", headers=headers)
    assert warm.status_code == 422
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024

    started = time.perf_counter()
    response = client.get("/api/v1/audience?category=offers", headers=headers, buffered=False)
    assert response.status_code == 200, response.status_code
    lines = size = chunks = 0
    first = b""
    for chunk in response.response:  # read as a client would: nothing is kept
        if not first:
            first = bytes(chunk[: len(HEADER)])
        lines += chunk.count(b"\n")
        size += len(chunk)
        chunks += 1
    response.close()
    elapsed = time.perf_counter() - started
    queue.put(
        {
            "rows": lines - 1,
            "header": first,
            "seconds": elapsed,
            "bytes": size,
            "chunks": chunks,
            "rss_before_mb": rss_before,
            "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        }
    )


def run() -> list[Result]:
    url = postgres_url()
    prepare(url)
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    child = context.Process(target=_export, args=(schema_url(url, SCHEMA), queue))
    child.start()
    measured = queue.get(timeout=600)
    child.join(60)
    if measured["header"] != HEADER:
        raise SystemExit(f"unexpected CSV header: {measured['header']!r}")
    expected = CONTACTS + LEFT_OUT  # the contacts known by user id only are listed too
    if measured["rows"] != expected:
        raise SystemExit(f"expected {expected} rows, the export had {measured['rows']}")
    rate = measured["rows"] / measured["seconds"]
    print(
        f"{measured['rows']:,} rows, {measured['bytes'] / 2**20:.1f} MiB in {measured['chunks']:,} "
        f"chunks, {measured['seconds']:.2f}s; RSS before {measured['rss_before_mb']:.1f} MB, "
        f"peak {measured['peak_rss_mb']:.1f} MB "
        f"(database {quote(make_url(url).database or '')}, schema {SCHEMA})",
        file=sys.stderr,
    )
    return [
        Result(
            "audience",
            "export rows/s (1,000,000 contacts, PostgreSQL)",
            rate,
            "rows/s",
            f">= {GOAL_ROWS_PER_SECOND:,}",
            rate >= GOAL_ROWS_PER_SECOND,
        ),
        Result(
            "audience",
            "peak RSS of the exporting process",
            measured["peak_rss_mb"],
            "MB",
            f"< {GOAL_PEAK_RSS_MB}",
            measured["peak_rss_mb"] < GOAL_PEAK_RSS_MB,
        ),
    ]
