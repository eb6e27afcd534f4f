"""Single statuses beside the floor one commit each sets, and as deployed, by threads.

A body of one status must be stored, its COMMIT done, before its 200. With sync workers a
process serves one request at a time, so each is a commit of its own. This bench measures, for
context beside the intake bench's goal (which the issue set with sync workers):

- the floor with sync workers (BENCH_WORKERS, 2): tests/bench/commit_app.py, the bare webhook
  plus the status's one statement and COMMIT and nothing else, loaded in turn with the bare
  webhook as the intake bench loads the app; then the app the same way, so the app's own share
  of a status's cost is the gap between the two, in one run;
- as the README deploys the app, by workers of threads (BENCH_THREADS, 8, keeping connections
  alive), where the statuses of requests a process serves at once share a commit
  (storage.status_groups): the app against the bare webhook served alike, and how many
  statuses a commit carried.

Every body is a new status of a seeded message. Run alone: `python -m tests.bench statuses`.
wrk must be installed (`apt-get install wrk`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.models import StatusEvent
from tests.bench import Result, fresh_schema, postgres_url, redis_url, settle
from tests.bench.bench_intake import (
    BODIES,
    SECRET,
    WORKERS,
    app_env,
    count_rows,
    cpu_results,
    machine_results,
    read_number,
    seed_outbound,
    single_statuses,
    write_bodies,
)
from tests.bench.serving import (
    APPLICATION_NAME,
    Baselines,
    Load,
    Served,
    backends,
    gunicorn,
    in_scratch_folder,
    workers,
)

THREADS = int(os.environ.get("BENCH_THREADS", "8"))
BARE_APP = "tests.bench.bare_app:app"


def run() -> list[Result]:
    return in_scratch_folder("statuses", _run)


def _run(folder: Path) -> list[Result]:
    files = {tag: folder / f"statuses-{tag}.txt" for tag in ("F", "A", "T")}
    for tag, path in files.items():
        write_bodies(path, single_statuses(tag, BODIES))
    pg = fresh_schema(postgres_url(), "bench_statuses")
    for tag in files:
        seed_outbound(pg, tag, BODIES // 3 + 1)
    settle(pg, ("message",))
    served = make_url(pg).update_query_dict({"application_name": APPLICATION_NAME})
    env = app_env(served.render_as_string(hide_password=False), redis_url())
    bare_env = {"WHATSAPP_APP_SECRET": SECRET}

    with gunicorn(BARE_APP, bare_env, WORKERS) as (bare_port, bare_pid):
        bare = Baselines(bare_port, bare_pid)
        with gunicorn("tests.bench.commit_app:app", env, WORKERS) as (port, master):
            floor_app = Served(port, lambda: workers(master), lambda: backends(pg))
            floor, bare_floor = bare.around(files["A"], floor_app, files["F"])
        with gunicorn("wsgi:app", env, WORKERS) as (port, master):
            app = Served(port, lambda: workers(master), lambda: backends(pg))
            alone, bare_alone = bare.around(files["A"], app, files["A"])
    with gunicorn(BARE_APP, bare_env, WORKERS, THREADS) as (bare_port, bare_pid):
        bare_threads = Baselines(bare_port, bare_pid)
        with gunicorn("wsgi:app", env, WORKERS, THREADS) as (port, master):
            app = Served(port, lambda: workers(master), lambda: backends(pg))
            before = _commits(pg)
            threaded, bare_threaded = bare_threads.around(files["T"], app, files["T"])
            time.sleep(1.5)  # backends report their counts within a second of going idle
            commits = _commits(pg) - before
    stored = count_rows(pg, StatusEvent)
    loads = (floor, alone, threaded, *bare.runs, *bare_threads.runs)
    failures = sum(load.non2xx + load.socket_errors for load in loads)
    answered = floor.requests + alone.requests + threaded.requests
    named = (
        ("single status, the floor", floor),
        ("single status, the app, sync workers", alone),
        ("single status, the app, threads", threaded),
    )
    return [
        *_ratios(floor, bare_floor, alone, bare_alone, threaded, bare_threaded),
        _context("statuses per commit, threads", threaded.requests / max(commits, 1), ""),
        *cpu_results("statuses", named),
        *machine_results("statuses", named),
        Result("statuses", "non-2xx answers and socket errors", failures, "", "0", failures == 0),
        Result(
            "statuses",
            "statuses stored / statuses answered 200",
            stored / max(answered, 1),
            "",
            "≥ 1.0 (each body fresh)",
            stored >= answered,
        ),
    ]


def _ratios(
    floor: Load, bare_floor: Load, alone: Load, bare_alone: Load, threaded: Load, bare: Load
) -> list[Result]:
    floor_ratio = floor.rate / bare_floor.rate
    alone_ratio = alone.rate / bare_alone.rate
    served_as = f"{WORKERS} workers × {THREADS} threads, the bare webhook served alike"
    return [
        _context(
            f"the floor: bare webhook + the status's COMMIT, {WORKERS} sync workers",
            floor_ratio,
            "× bare",
        ),
        _context(f"single statuses, the app, {WORKERS} sync workers", alone_ratio, "× bare"),
        _context("the app's share of the floor, sync workers", alone_ratio / floor_ratio, ""),
        _context(f"single statuses, the app, {served_as}", threaded.rate / bare.rate, "× bare"),
    ]


def _context(figure: str, value: float, unit: str) -> Result:
    return Result("statuses", f"{figure} (context)", value, unit, "(none)", True)


def _commits(database_url: str) -> int:
    """Transactions the database has committed: during a load, nearly all the app's."""
    return read_number(
        database_url,
        text("SELECT xact_commit FROM pg_stat_database WHERE datname = current_database()"),
    )
