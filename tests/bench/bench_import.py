"""`flask --app wsgi consent import` of 1,000,000 rows on PostgreSQL, against a raw COPY of the
same file in the same run: the ratio of their speeds, rows per second and peak memory.

The CSV is generated once (bench-results/, git-ignored) with unique valid numbers, both
categories on half the rows and a handful of consent texts, as a year of paper forms would
have. Each measurement starts from an empty schema of its own at the newest migration, on the
same database the tests use but never their `public` schema. COPY loads the file into a table
of four text columns, the least any import can do. The import runs as the real command in a
child process, so its peak RSS (wait4) is the importer's alone.

Goal: the import at least 0.3 of COPY's speed, with peak RSS under 150 MB.
Set BENCH_IMPORT_ROWS for a shorter run, BENCH_IMPORT_PROFILE=1 to profile the importer
(cProfile, top functions printed; the batches are recorded by a second thread it does not see),
BENCH_IMPORT_FLOOR=1 to also time what the schema itself costs: the same contacts, ledger rows
and current consent written by bare INSERT ... SELECT from the COPY table, no check made, the
least any importer keeping these tables, indexes and foreign keys can take.
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from sqlalchemy.engine import make_url

from tests.bench import Result, fresh_schema, postgres_url

ROWS = int(os.environ.get("BENCH_IMPORT_ROWS", "1000000"))
SCHEMA = "bench_import"
ROOT = Path(__file__).resolve().parents[2]
RESULTS = ROOT / "bench-results"
GOAL_RATIO = 0.3
GOAL_PEAK_RSS_MB = 150
TEXTS = (
    "Yes, Nimbus Bakery may send me order updates and offers on WhatsApp. Reply STOP to stop.",
    "I agree to receive order updates from Nimbus Bakery on WhatsApp.",
    "نعم، أوافق على تلقي رسائل Nimbus Bakery على واتساب. أرسل «توقف» للإيقاف.",
)


def generate(rows: int) -> Path:
    """The file, written once per size and kept between runs."""
    path = RESULTS / f"consent-import-{rows}.csv"
    if path.exists():
        return path
    RESULTS.mkdir(exist_ok=True)
    start = datetime(2025, 1, 1, tzinfo=UTC)
    partial = path.with_suffix(".partial")
    with partial.open("w", encoding="utf-8", newline="") as out:
        out.write("wa_id,categories,collected_at,text\n")
        for n in range(rows):
            # UAE mobile numbers, +971 50 plus seven digits: valid and all different.
            number = f"+971 50 {n // 10000:03d} {n % 10000:04d}"
            categories = "orders;offers" if n % 2 else "orders"
            when = (start + timedelta(seconds=17 * n)).isoformat()
            text = TEXTS[n % len(TEXTS)]
            out.write(f'{number},{categories},{when},"{text}"\n')
    partial.rename(path)
    return path


def _plain(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


def copy_seconds(url: str, path: Path) -> float:
    """A raw COPY of the file into a table of four text columns, committed."""
    with psycopg.connect(_plain(url)) as connection:
        connection.execute(
            "CREATE TABLE raw_copy (wa_id text, categories text, collected_at text, text text)"
        )
        connection.commit()
        started = time.perf_counter()
        with (
            connection.cursor() as cursor,
            cursor.copy("COPY raw_copy FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        connection.commit()
        elapsed = time.perf_counter() - started
        copied = connection.execute("SELECT count(*) FROM raw_copy").fetchone()
    if copied is None or copied[0] != ROWS:
        raise SystemExit(f"COPY loaded {copied} rows, not {ROWS}")
    return elapsed


# The rows an import of the file leaves, by the plainest statements: no check, no dedupe; one
# transaction per batch of the file's rows, as the import.
FLOOR_BATCH = 10_000
FLOOR = (
    (
        "contacts",
        "WITH new AS (INSERT INTO contact (wa_id, created_at)"
        " SELECT DISTINCT translate(wa_id, ' +', ''), now() FROM raw_copy"
        " WHERE n > %(after)s AND n <= %(upto)s RETURNING id, wa_id)"
        " INSERT INTO ids SELECT * FROM new",
    ),
    (
        "joined",
        "CREATE TEMP TABLE decided ON COMMIT DROP AS"
        " SELECT c.id, k.category, r.collected_at::timestamptz AS at, r.text FROM raw_copy r"
        " JOIN ids c ON c.wa_id = translate(r.wa_id, ' +', ''),"
        " unnest(string_to_array(r.categories, ';')) AS k(category)"
        " WHERE r.n > %(after)s AND r.n <= %(upto)s",
    ),
    (
        "ledger",
        "INSERT INTO consent_event (contact_id, category, granted, source, occurred_at,"
        " recorded_at, text_version, text, evidence) SELECT id, category, true, 'paper', at,"
        " now(), left(md5(text), 16), text,"
        " jsonb_build_object('import_file', 'f.csv', 'line', 1) FROM decided",
    ),
    (
        "state",
        "INSERT INTO consent (contact_id, category, granted, source, updated_at, granted_at,"
        " confirmed) SELECT id, category, true, 'paper', at, at, true FROM decided",
    ),
)


def floor_seconds(url: str, path: Path) -> dict[str, float]:
    """The FLOOR statements, each timed, after an untimed COPY of the file."""
    with psycopg.connect(_plain(url)) as connection:
        connection.execute(
            "CREATE TABLE raw_copy (n bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
            " wa_id text, categories text, collected_at text, text text)"
        )
        columns = "raw_copy (wa_id, categories, collected_at, text)"
        with (
            connection.cursor() as cursor,
            cursor.copy(f"COPY {columns} FROM STDIN WITH (FORMAT csv, HEADER true)") as copy,
            path.open("rb") as source,
        ):
            while chunk := source.read(1 << 20):
                copy.write(chunk)
        connection.execute("ANALYZE raw_copy")
        connection.commit()
        seconds = dict.fromkeys([name for name, _ in FLOOR], 0.0)
        for after in range(0, ROWS, FLOOR_BATCH):
            batch = {"after": after, "upto": after + FLOOR_BATCH}
            connection.execute("CREATE TEMP TABLE ids (id bigint, wa_id text) ON COMMIT DROP")
            for name, statement in FLOOR:
                started = time.perf_counter()
                connection.execute(statement, batch)  # type: ignore[arg-type]
                seconds[name] += time.perf_counter() - started
            started = time.perf_counter()
            connection.commit()
            seconds["commit"] = seconds.get("commit", 0.0) + time.perf_counter() - started
        return seconds


def import_run(url: str, path: Path) -> tuple[float, float, str]:
    """(seconds, peak RSS in MB, output) of the real command, in a child process."""
    env = {
        **os.environ,
        "APP_ENV": "production",
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_APP_SECRET": "bench",
        "SECRET_KEY": "bench-secret-key-for-the-import-of-a-million-rows",
        "DATABASE_URL": url,
        "OPTIN_CONFIG": str(ROOT / "optin.toml"),
        "RUN_DISPATCHER": "0",
        "LOG_LEVEL": "WARNING",
    }
    command = [sys.executable]
    if os.environ.get("BENCH_IMPORT_PROFILE"):
        command += ["-m", "cProfile", "-s", "cumulative", "-o", str(RESULTS / "import.prof")]
    command += ["-m", "flask", "--app", "wsgi", "consent", "import", str(path), "--source", "paper"]
    started = time.perf_counter()
    child = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT
    )
    assert child.stdout is not None
    output = child.stdout.read().decode()
    _, status, usage = os.wait4(child.pid, 0)
    elapsed = time.perf_counter() - started
    child.returncode = os.waitstatus_to_exitcode(status)
    if child.returncode != 0:
        raise SystemExit(f"the import exited {child.returncode}:\n{output[-3000:]}")
    return elapsed, usage.ru_maxrss / 1024, output


def run() -> list[Result]:
    url = postgres_url()
    path = generate(ROWS)
    size_mb = path.stat().st_size / 2**20
    copied = copy_seconds(fresh_schema(url, SCHEMA), path)
    imported, rss, output = import_run(fresh_schema(url, SCHEMA), path)
    ratio = copied / imported
    rate = ROWS / imported
    print(
        f"{ROWS:,} rows ({size_mb:.0f} MiB): COPY {copied:.2f}s "
        f"({ROWS / copied:,.0f} rows/s), import {imported:.2f}s ({rate:,.0f} rows/s), "
        f"ratio {ratio:.3f}, peak RSS {rss:.1f} MB\n{output.strip().splitlines()[-1]}",
        file=sys.stderr,
    )
    if os.environ.get("BENCH_IMPORT_FLOOR"):
        parts = floor_seconds(fresh_schema(url, SCHEMA), path)
        floor = sum(parts.values())
        print(
            f"schema floor {floor:.2f}s ("
            + ", ".join(f"{name} {spent:.2f}s" for name, spent in parts.items())
            + f"): no importer writing these tables does better than ratio {copied / floor:.3f};"
            f" the import takes {imported / floor:.2f} times the floor",
            file=sys.stderr,
        )
    if os.environ.get("BENCH_IMPORT_PROFILE"):
        import pstats

        pstats.Stats(str(RESULTS / "import.prof")).sort_stats("tottime").print_stats(25)
    return [
        Result(
            "import",
            f"speed as % of a raw COPY of the file ({ROWS:,} rows, PostgreSQL)",
            100 * ratio,
            "%",
            f">= {100 * GOAL_RATIO:.0f} %",
            ratio >= GOAL_RATIO,
        ),
        Result("import", "rows/s", rate, "rows/s", "(reported)", True),
        Result(
            "import",
            "peak RSS of the importing process",
            rss,
            "MB",
            f"< {GOAL_PEAK_RSS_MB}",
            rss < GOAL_PEAK_RSS_MB,
        ),
    ]
