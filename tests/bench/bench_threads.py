"""Single statuses with the app served as the README deploys it: gunicorn workers of threads.

With sync workers a process serves one request at a time, so each single status is a commit of
its own. Served by threads, the statuses of requests a process serves at once share a commit
(storage.status_groups), which is what this measures: both the app and the bare webhook are
served by 2 workers of 8 threads (BENCH_WORKERS, BENCH_THREADS), keeping connections alive, and
loaded in turn as in the intake bench, every body a new status of a seeded message. Context
beside the intake bench's goal, which the issue set with sync workers: how the deployed
configuration fares, and how many statuses a commit carried.
Run alone: `python -m tests.bench threads`. wrk must be installed (`apt-get install wrk`).
"""

from __future__ import annotations

import os
import time
from pathlib import Path

from sqlalchemy import text
from sqlalchemy.engine import make_url

from storage.db import make_engine
from storage.models import StatusEvent
from tests.bench import Result, fresh_schema, postgres_url, redis_url, settle
from tests.bench.bench_intake import (
    BODIES,
    SECRET,
    WORKERS,
    app_env,
    count_rows,
    seed_outbound,
    single_statuses,
    write_bodies,
)
from tests.bench.serving import (
    APPLICATION_NAME,
    Baselines,
    Served,
    backends,
    gunicorn,
    in_scratch_folder,
    workers,
)

THREADS = int(os.environ.get("BENCH_THREADS", "8"))


def run() -> list[Result]:
    return in_scratch_folder("threads", _run)


def _run(folder: Path) -> list[Result]:
    statuses_file = folder / "statuses.txt"
    write_bodies(statuses_file, single_statuses("T", BODIES * 2))
    pg = fresh_schema(postgres_url(), "bench_threads")
    seed_outbound(pg, "T", BODIES * 2 // 3 + 1)
    settle(pg, ("message",))
    served = make_url(pg).update_query_dict({"application_name": APPLICATION_NAME})
    served_url = served.render_as_string(hide_password=False)
    bare_env = {"WHATSAPP_APP_SECRET": SECRET}
    with gunicorn("tests.bench.bare_app:app", bare_env, WORKERS, THREADS) as (bare_port, bare_pid):
        bare = Baselines(bare_port, bare_pid)
        app_served = app_env(served_url, redis_url())
        with gunicorn("wsgi:app", app_served, WORKERS, THREADS) as (port, master):
            app = Served(port, lambda: workers(master), lambda: backends(pg))
            before = _commits(pg)
            status, bare_status = bare.around(statuses_file, app, statuses_file)
            time.sleep(1.5)  # backends report their counts within a second of going idle
            commits = _commits(pg) - before
        stored = count_rows(pg, StatusEvent)
    failures = sum(load.non2xx + load.socket_errors for load in (status, *bare.runs))
    ratio = status.rate / bare_status.rate
    group = "threads"
    served_as = f"{WORKERS} workers × {THREADS} threads"
    return [
        Result(
            group,
            f"bare Flask, single status, {served_as} (baseline)",
            bare_status.rate,
            "req/s",
            "(baseline)",
            True,
        ),
        Result(
            group,
            f"single-status bodies, {served_as}, PostgreSQL + Redis (context)",
            ratio,
            "× bare",
            "(none: the goal is the intake bench's, with sync workers)",
            True,
        ),
        Result(
            group,
            "statuses per commit (context)",
            status.requests / max(commits, 1),
            "",
            "(none)",
            True,
        ),
        Result(
            group,
            "CPU per single status (context)",
            status.cpu_ms,
            f"ms ({status.database_cpu_ms:.2f} of it the database's)",
            "(none)",
            True,
        ),
        Result(
            group, "CPU per request, bare Flask (context)", bare_status.cpu_ms, "ms", "(none)", True
        ),
        Result(group, "non-2xx answers and socket errors", failures, "", "0", failures == 0),
        Result(
            group,
            "statuses stored / statuses answered 200",
            stored / max(status.requests, 1),
            "",
            "≥ 1.0 (each body fresh)",
            stored >= status.requests,
        ),
    ]


def _commits(database_url: str) -> int:
    """Transactions the database has committed: during a load, nearly all the app's."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(
                connection.execute(
                    text(
                        "SELECT xact_commit FROM pg_stat_database"
                        " WHERE datname = current_database()"
                    )
                ).scalar_one()
            )
    finally:
        engine.dispose()
