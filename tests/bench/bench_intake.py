"""Intake under load, as Meta delivers it, measured against a bare Flask webhook in the same run.

Both are served by gunicorn (2 sync workers; SQLite: 1) and loaded by wrk with 8 connections
for 10 s per load, each request a unique signed body, so none is a redelivery. The bare
webhook (tests/bench/bare_app.py) checks the signature, parses the JSON and answers 200; every
figure of the app is printed as a ratio to it. The two are loaded in turn, 2 s of each
(BENCH_SLICES, 5 slices of the app's 10 s), the bare webhook first and last, and each one's
slices merged: a small machine's speed drifts by more than the goals' margins within a minute,
and slices in turn weigh the drift alike on both. Each slice of the app goes on in its body
file where the last one stopped:

- single-status bodies (each a status of a message the app sent, seeded beforehand beside
  CUSTOMERS earlier customers, and the seeded tables settled as a live database keeps them:
  tests.bench.settle);
- bodies of 100 statuses, as statuses per bare request;
- a new customer's first message (the whole dialogue: contact, log, state, ledger, outbox),
  on PostgreSQL + Redis and on the embedded SQLite, with p50 and p99 latency;
- for context, each of those customers' next message (their contact, dialogue state, consents
  and what they were last shown read back), on PostgreSQL + Redis;
- a 1,000-message batch (Meta's largest) posted to the running server;
- the workers' resident memory;
- CPU per request (the workers', plus the database backends serving the app), for context: it
  depends less than throughput on what else the machine runs, so it tells where a busy
  machine's run went;
- the share of the machine's CPU its host stole during each run (/proc/stat), for context: on
  a virtual machine, runs the host stole from differently are not comparable.

The dispatcher does not run (RUN_DISPATCHER=0): what is measured is intake alone; the replies
stay queued. Settings: TEST_POSTGRES_URL, TEST_REDIS_URL; BENCH_SECONDS (10), BENCH_SLICES (5),
BENCH_WORKERS (2).
Run alone: `python -m tests.bench intake`. wrk must be installed (`apt-get install wrk`).
"""

from __future__ import annotations

import os
import sys
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import requests
from sqlalchemy import func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.sql.expression import Executable
from sqlmodel import col

from bot.dev import simulate
from flows.model import Stage
from storage import migrate
from storage.db import make_engine
from storage.models import Contact, Message, StatusEvent
from storage.types import utcnow
from tests.bench import Result, fresh_schema, postgres_url, redis_url, settle
from tests.bench.serving import (
    APPLICATION_NAME,
    ROOT,
    Baselines,
    Load,
    Served,
    backends,
    gunicorn,
    in_scratch_folder,
    merged,
    workers,
    workers_rss_mb,
)

SECRET = "bench-secret"
WORKERS = int(os.environ.get("BENCH_WORKERS", "2"))
BODIES = 30_000  # more than the bare webhook takes in BENCH_SECONDS on a small machine
BATCH_BODIES = 6_000  # bodies of 100 statuses: more than the app takes in BENCH_SECONDS
STATUSES_PER_BODY = 100
BATCH = 1000
PHONE_NUMBER_ID = simulate.DEFAULT_PHONE_NUMBER_ID
FIRSTS = "4930"  # the first-message run's numbers, whose owners then send a next message
# The customers a business has when its volume matters: each wrote before and went through the
# dialogue. With them the tables are the size, and have the statistics, that the planner sees in
# production; a table analyzed nearly empty would keep, on a server without autovacuum, plans
# chosen for a handful of rows.
CUSTOMERS = 100_000


# --- bodies ----------------------------------------------------------------------------------


def write_bodies(path: Path, bodies: Iterator[bytes]) -> None:
    """One "signature<TAB>body" line per body, for load.lua."""
    with path.open("wb") as out:
        for body in bodies:
            out.write(simulate.sign(body, SECRET).encode() + b"\t" + body + b"\n")


def outbound_wamid(tag: str, n: int) -> str:
    return f"wamid.BENCH{tag}{n:08d}"


def single_statuses(tag: str, count: int) -> Iterator[bytes]:
    """sent, delivered, read for each seeded message in turn: every body a new (wamid, status)."""
    stages = ("sent", "delivered", "read")
    for n in range(count):
        yield simulate.status_body(
            wamid=outbound_wamid(tag, n // 3),
            status=stages[n % 3],
            recipient_id=f"4917{n // 3:08d}",
        )


def status_batches(tag: str, count: int) -> Iterator[bytes]:
    """Bodies of STATUSES_PER_BODY statuses, each of another seeded message."""
    for b in range(count):
        yield simulate.batch_body(
            *(
                simulate.status_body(
                    wamid=outbound_wamid(tag, b * STATUSES_PER_BODY + i),
                    status="delivered",
                    recipient_id=f"4918{b * STATUSES_PER_BODY + i:08d}",
                )
                for i in range(STATUSES_PER_BODY)
            )
        )


def first_messages(prefix: str, count: int) -> Iterator[bytes]:
    """A new customer's first words: each from a number never seen."""
    for n in range(count):
        yield simulate.text_body(wa_id=f"{prefix}{n:08d}", text="hello")


def returning_messages(database_url: str, prefix: str) -> Iterator[bytes]:
    """A next message from each customer a run created (their numbers start with prefix)."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            numbers = connection.execute(
                select(Contact.wa_id).where(col(Contact.wa_id).startswith(prefix))
            ).scalars()
            bodies = [simulate.text_body(wa_id=wa_id, text="hello again") for wa_id in numbers]
    finally:
        engine.dispose()
    yield from bodies


def seed_outbound(database_url: str, tag: str, count: int) -> None:
    """Messages the business sent, for the statuses to move forward: plain bulk inserts."""
    engine = make_engine(database_url)
    now = utcnow()
    try:
        with engine.begin() as connection:
            contact_id = connection.execute(
                insert(Contact).returning(Contact.id),  # type: ignore[arg-type]
                [{"wa_id": f"4910{tag}", "created_at": now}],
            ).scalar_one()
            for start in range(0, count, 10_000):
                connection.execute(
                    insert(Message),
                    [
                        {
                            "id": uuid.uuid4().hex,
                            "contact_id": contact_id,
                            "direction": "out",
                            "wamid": outbound_wamid(tag, n),
                            "phone_number_id": PHONE_NUMBER_ID,
                            "type": "text",
                            "text": "bench",
                            "status": "queued",
                            "meta_timestamp": now,
                            "created_at": now,
                        }
                        for n in range(start, min(start + 10_000, count))
                    ],
                )
    finally:
        engine.dispose()


def seed_customers(database_url: str, count: int) -> None:
    """Customers who wrote before and declined the offer: a contact and a dialogue row each."""
    engine = make_engine(database_url)
    try:
        with engine.begin() as connection:
            connection.execute(
                text(
                    "INSERT INTO contact (wa_id, created_at, first_inbound_at, last_inbound_at)"
                    " SELECT '4919' || lpad(n::text, 8, '0'), now(), now(), now()"
                    " FROM generate_series(1, :count) AS n"
                ),
                {"count": count},
            )
            connection.execute(
                text(
                    "INSERT INTO dialogue (contact_id, stage, reprompts, updated_at)"
                    " SELECT id, :stage, 0, now() FROM contact WHERE wa_id LIKE '4919%'"
                ),
                {"stage": Stage.DECLINED.value},
            )
    finally:
        engine.dispose()


def count_rows(database_url: str, model: type) -> int:
    return read_number(database_url, select(func.count()).select_from(model))


def read_number(database_url: str, statement: Executable) -> int:
    """The one number a statement reads, on an engine of its own."""
    engine = make_engine(database_url)
    try:
        with engine.connect() as connection:
            return int(connection.execute(statement).scalar_one())
    finally:
        engine.dispose()


def app_env(database_url: str, redis: str | None) -> dict[str, str]:
    env = {
        "APP_ENV": "production",
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_APP_SECRET": SECRET,
        "WHATSAPP_ACCESS_TOKEN": "bench-token",
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "SECRET_KEY": "bench-secret-key-of-32-characters-or-more",
        "DATABASE_URL": database_url,
        "OPTIN_CONFIG": str(ROOT / "optin.toml"),
        "RUN_DISPATCHER": "0",
        "REDIS_PREFIX": f"optin-bench-{uuid.uuid4().hex[:8]}:",
        "REDIS_URL": redis or "",
        "LOG_LEVEL": "WARNING",
    }
    return env


def post_batch(port: int, prefix: str) -> float:
    """Seconds to answer one body of BATCH first messages (200 contacts, five each); infinite if
    it was not answered 200."""
    body = simulate.batch_body(
        *(
            simulate.text_body(wa_id=f"{prefix}{n % 200:08d}", text=f"hello {n}")
            for n in range(BATCH)
        )
    )
    headers = {"X-Hub-Signature-256": simulate.sign(body, SECRET)}
    started = time.perf_counter()
    answer = requests.post(f"http://127.0.0.1:{port}/webhook", data=body, headers=headers)
    seconds = time.perf_counter() - started
    if answer.status_code != 200:  # gunicorn killed the worker at its timeout: Meta would retry
        print(f"1,000-message batch answered {answer.status_code}", file=sys.stderr)
        return float("inf")
    assert answer.json()["messages"] == BATCH, answer.text
    return seconds


def cpu_results(group: str, loads: tuple[tuple[str, Load], ...]) -> list[Result]:
    """CPU per request, the app's counting its database backends: unlike req/s, it does not
    depend on what else the machine is doing, so it tells where a busy machine's run went."""
    return [
        Result(
            group,
            f"CPU per request, {label} (context)",
            load.cpu_ms + load.database_cpu_ms,
            f"ms ({load.database_cpu_ms:.2f} of it the database's)",
            "(none)",
            True,
        )
        for label, load in loads
    ]


def machine_results(group: str, loads: tuple[tuple[str, Load], ...]) -> list[Result]:
    """What the machine did besides serving during each run: CPU its host took back (runs of a
    virtual machine are comparable only when this is alike; it was 2 % to 29 % a second in one
    run), and time it sat idle waiting on the disk. A commit waits for its flush to the disk,
    and this machine's virtual disk has stalled a flush for over 2 s: where the app's run shows
    more of this than usual, the disk, not the code, set its rate."""
    return [
        Result(group, f"{what}, {label} (context)", 100 * share, "%", "(none)", True)
        for label, load in loads
        for what, share in (
            ("CPU stolen by the host", load.stolen),
            ("CPU idle waiting on the disk", load.disk_wait),
        )
    ]


# --- the run ---------------------------------------------------------------------------------


def run() -> list[Result]:
    return in_scratch_folder("intake", _run)


def _run(folder: Path) -> list[Result]:
    statuses_file = folder / "statuses.txt"
    batches_file = folder / "batches.txt"
    firsts_file = folder / "firsts.txt"
    firsts_lite_file = folder / "firsts-sqlite.txt"
    returning_file = folder / "returning.txt"
    batch_bodies = BATCH_BODIES
    write_bodies(statuses_file, single_statuses("S", BODIES))
    write_bodies(batches_file, status_batches("B", batch_bodies))
    write_bodies(firsts_file, first_messages(FIRSTS, BODIES))
    write_bodies(firsts_lite_file, first_messages("4931", BODIES))

    pg = fresh_schema(postgres_url(), "bench_intake")
    seed_outbound(pg, "S", BODIES // 3 + 1)
    seed_outbound(pg, "B", batch_bodies * STATUSES_PER_BODY)
    seed_customers(pg, CUSTOMERS)
    settle(pg, ("contact", "dialogue", "message"))
    served = make_url(pg).update_query_dict({"application_name": APPLICATION_NAME})
    served_url = served.render_as_string(hide_password=False)
    bare_env = {"WHATSAPP_APP_SECRET": SECRET}
    # The bare webhook serves beside the app, idle while the app is loaded, and is loaded in
    # turn with it (serving.Baselines): this machine's speed moves by a third from one minute
    # to the next, so a baseline run minutes away would measure that.
    with gunicorn("tests.bench.bare_app:app", bare_env, WORKERS) as (bare_port, bare_master):
        bare = Baselines(bare_port, bare_master)
        with gunicorn("wsgi:app", app_env(served_url, redis_url()), WORKERS) as (port, master):
            app = Served(port, lambda: workers(master), lambda: backends(pg))
            status, bare_status = bare.around(statuses_file, app, statuses_file)
            batches, bare_batches = bare.around(statuses_file, app, batches_file)
            first, bare_first = bare.around(firsts_file, app, firsts_file)
            write_bodies(returning_file, returning_messages(pg, FIRSTS))
            back, bare_back = bare.around(firsts_file, app, returning_file)
            batch_seconds = post_batch(port, "4932")
            rss = workers_rss_mb(master)
        stored_statuses = count_rows(pg, StatusEvent)

        lite = f"sqlite:///{folder}/bench.db"
        migrate.upgrade(lite)
        with gunicorn("wsgi:app", app_env(lite, None), 1) as (port, master):
            lite_app = Served(port, lambda: workers(master))
            first_lite, bare_first_lite = bare.around(firsts_file, lite_app, firsts_lite_file)

    # wrk starts over when it runs out of bodies: repeats would be answered as redeliveries
    # and flatter the figures, so a run that ran out says so.
    loads = (status, batches, first, back, first_lite)
    ran_out = any(load.repeats for load in loads)
    failures = sum(load.non2xx + load.socket_errors for load in (*loads, *bare.runs))
    expected_statuses = status.requests + batches.requests * STATUSES_PER_BODY
    group = "intake"
    return [
        Result(
            group,
            "bare Flask, single-status bodies (baseline)",
            bare_status.rate,
            "req/s",
            "(baseline)",
            True,
        ),
        Result(
            group,
            "bare Flask, first-message bodies (baseline)",
            bare_first.rate,
            "req/s",
            "(baseline)",
            True,
        ),
        Result(
            group,
            "bare Flask, slowest run / fastest run (context)",
            min(run.rate for run in bare.runs) / max(run.rate for run in bare.runs),
            f"(of {len(bare.runs)} runs)",
            "(none)",
            True,
        ),
        Result(
            group,
            "single-status bodies, PostgreSQL + Redis",
            status.rate / bare_status.rate,
            "× bare",
            "≥ 0.35",
            status.rate / bare_status.rate >= 0.35,
        ),
        Result(
            group,
            "100-status bodies: statuses per bare request",
            batches.rate * STATUSES_PER_BODY / bare_batches.rate,
            "statuses",
            "≥ 5",
            batches.rate * STATUSES_PER_BODY / bare_batches.rate >= 5,
        ),
        Result(
            group,
            "first message, PostgreSQL + Redis",
            first.rate / bare_first.rate,
            "× bare",
            "≥ 0.12",
            first.rate / bare_first.rate >= 0.12,
        ),
        Result(
            group, "first message, PostgreSQL + Redis, p50", first.p50_ms, "ms", "(context)", True
        ),
        Result(
            group,
            "first message, PostgreSQL + Redis, p99",
            first.p99_ms,
            "ms",
            "≤ 100 ms",
            first.p99_ms <= 100,
        ),
        Result(
            group,
            "a returning customer's message, PostgreSQL + Redis (context)",
            back.rate / bare_back.rate,
            "× bare",
            "(none)",
            True,
        ),
        Result(
            group,
            "first message, SQLite (1 worker)",
            first_lite.rate / bare_first_lite.rate,
            "× bare",
            "≥ 0.06",
            first_lite.rate / bare_first_lite.rate >= 0.06,
        ),
        Result(
            group,
            "1,000-message batch, PostgreSQL + Redis",
            batch_seconds,
            "s",
            "≤ 3 s",
            batch_seconds <= 3,
        ),
        Result(group, "worker RSS", rss, "MB", "≤ 120 MB", rss <= 120),
        Result(
            group,
            "every app request a body never posted before",
            not ran_out,
            "",
            "1 (yes)",
            not ran_out,
        ),
        *cpu_results(
            group,
            (
                ("bare Flask, single status", bare_status),
                ("bare Flask, first message", bare_first),
                ("single status, PostgreSQL + Redis", status),
                ("100 statuses, PostgreSQL + Redis", batches),
                ("first message, PostgreSQL + Redis", first),
                ("a returning customer's message, PostgreSQL + Redis", back),
                ("first message, SQLite", first_lite),
            ),
        ),
        *machine_results(
            group,
            (
                ("the bare webhook's runs", merged(bare.runs)),
                ("single status", status),
                ("100 statuses", batches),
                ("first message, PostgreSQL + Redis", first),
                ("a returning customer's message", back),
                ("first message, SQLite", first_lite),
            ),
        ),
        Result(group, "non-2xx answers and socket errors", failures, "", "0", failures == 0),
        Result(
            group,
            "statuses stored / statuses answered 200",
            stored_statuses / expected_statuses,
            "",
            "≥ 1.0 (each body fresh)",
            stored_statuses >= expected_statuses,
        ),
    ]


if __name__ == "__main__":
    from tests.bench import table

    print(table(run()))
