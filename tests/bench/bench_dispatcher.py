"""The dispatcher's send rate against a configured 1000 messages/s, on PostgreSQL and Redis.

10,000 text messages to 1,000 recipients are queued in one transaction, in a schema of its own
(`bench_outbox`, through search_path, so the tests' `public` schema is never touched), while
dispatcher processes (`flask --app wsgi outbox work`, the production command) wait for them.
They share the Redis token bucket set to SEND_RATE_PER_SECOND=1000 and send to the fake Graph
API (tests/fake_graph.py, no latency, no failures), which runs in a process of its own so that
its CPU is not the dispatchers'. The rate is measured where Meta would see it: the fake server's
receive times of the accepted messages, first to last.

Goal: at least 95% of the configured rate, no message sent twice, none lost.

Settings (environment): TEST_POSTGRES_URL, TEST_REDIS_URL as for the tests; BENCH_DISPATCHERS
(processes, default: the number of CPUs, at least 2), BENCH_CONCURRENCY (threads each, 16),
BENCH_BATCH_SIZE (rows per claim, 200).

Run alone: `python -m tests.bench.bench_dispatcher`; with the others: `python -m tests.bench`.
"""

from __future__ import annotations

import multiprocessing
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import requests
from requests.adapters import HTTPAdapter
from sqlalchemy import func, insert, select
from sqlalchemy.engine import Engine

from storage.db import make_engine
from storage.models import Contact, Message, OutboxItem
from storage.types import utcnow
from tests.bench import Result, fresh_schema, postgres_url, redis_url

MESSAGES = 10_000
RECIPIENTS = 1_000
RATE = 1000
GOAL_RATIO = 0.95
SCHEMA = "bench_outbox"
TOKEN = "bench-token"
PHONE_NUMBER_ID = "106540352242922"
ROOT = Path(__file__).resolve().parents[2]


def queue_all(engine: Engine) -> None:
    """Every message and its outbox row in one transaction: all due at the same moment.

    Plain bulk inserts of the rows enqueue_message writes; the queueing is not what is measured.
    """
    now = utcnow()
    with engine.begin() as connection:
        ids = connection.execute(
            insert(Contact).returning(Contact.id),  # type: ignore[arg-type]
            [{"wa_id": f"4917{n:08d}", "created_at": now} for n in range(RECIPIENTS)],
        )
        contacts = [(row[0], f"4917{n:08d}") for n, row in enumerate(ids)]
        messages, outbox = [], []
        for n in range(MESSAGES):
            contact_id, to = contacts[n % RECIPIENTS]
            body = f"bench {n:05d}"
            payload = {
                "messaging_product": "whatsapp",
                "recipient_type": "individual",
                "to": to,
                "type": "text",
                "text": {"preview_url": False, "body": body},
            }
            message_id = uuid.uuid4().hex
            messages.append(
                {
                    "id": message_id,
                    "contact_id": contact_id,
                    "direction": "out",
                    "phone_number_id": PHONE_NUMBER_ID,
                    "type": "text",
                    "text": body,
                    "status": "queued",
                    "meta_timestamp": now,
                    "created_at": now,
                    "raw": payload,
                }
            )
            outbox.append(
                {
                    "message_id": message_id,
                    "phone_number_id": PHONE_NUMBER_ID,
                    "kind": "message",
                    "payload": payload,
                    "due_at": now,
                    "attempts": 0,
                    "created_at": now,
                }
            )
        connection.execute(insert(Message), messages)
        connection.execute(insert(OutboxItem), outbox)


def pending(engine: Engine) -> int:
    with engine.connect() as connection:
        return int(connection.execute(select(func.count()).select_from(OutboxItem)).scalar_one())


# --- the fake Graph API, in a process of its own ---------------------------------------------


def _serve(connection: Any) -> None:
    from tests.fake_graph import FakeGraph

    with FakeGraph(tokens={TOKEN}) as fake:
        connection.send(fake.url)
        connection.recv()  # "report"
        # Only the queued messages (the ceiling's posts are not "bench ..." texts).
        delivered = [r for r in fake.deliveries() if (r.text or "").startswith("bench ")]
        connection.send(
            {
                "times": sorted(r.at for r in delivered),
                "texts": Counter(r.text for r in delivered),
                "outcomes": Counter(r.outcome for r in fake.snapshot()),
            }
        )


def transport_ceiling(url: str, seconds: float = 3.0, threads: int = 16) -> float:
    """Requests per second one process posts to the fake server with nothing else to do.

    For context: a dispatcher process cannot send faster than its HTTP client can post.
    """
    session = requests.Session()
    session.mount("http://", HTTPAdapter(pool_maxsize=threads))
    target = f"{url}/v23.0/{PHONE_NUMBER_ID}/messages"
    body = {"messaging_product": "whatsapp", "to": "4917000", "type": "text", "text": {"body": "-"}}
    headers = {"Authorization": f"Bearer {TOKEN}"}
    deadline = time.monotonic() + seconds

    def post_until_deadline(_: int) -> int:
        done = 0
        while time.monotonic() < deadline:
            session.post(target, json=body, headers=headers, timeout=5).raise_for_status()
            done += 1
        return done

    started = time.monotonic()
    with ThreadPoolExecutor(threads) as pool:
        total = sum(pool.map(post_until_deadline, range(threads)))
    return total / (time.monotonic() - started)


# --- the run ----------------------------------------------------------------------------------


def _cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far (Linux /proc)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def _worker_env(database_url: str, fake_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "BENCH_"))}
    env.update(
        {
            "APP_ENV": "production",
            "WHATSAPP_VERIFY_TOKEN": "bench",
            "WHATSAPP_APP_SECRET": "bench",
            "SECRET_KEY": "bench-secret-key",
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url(),
            "REDIS_PREFIX": f"optin-bench-{uuid.uuid4().hex[:8]}:",
            "SEND_RATE_PER_SECOND": str(RATE),
            "WHATSAPP_ACCESS_TOKEN": TOKEN,
            "WHATSAPP_API_URL": f"{fake_url}/v23.0",
            "OPTIN_CONFIG": str(ROOT / "optin.toml"),
            "LOG_LEVEL": "WARNING",
        }
    )
    return env


def run() -> list[Result]:
    dispatchers = int(os.environ.get("BENCH_DISPATCHERS") or max(2, os.cpu_count() or 2))
    concurrency = os.environ.get("BENCH_CONCURRENCY", "16")
    batch_size = os.environ.get("BENCH_BATCH_SIZE", "200")
    database_url = fresh_schema(postgres_url(), SCHEMA)
    engine = make_engine(database_url)

    context = multiprocessing.get_context("spawn")
    ours, theirs = context.Pipe()
    server = context.Process(target=_serve, args=(theirs,), daemon=True)
    server.start()
    fake_url = ours.recv()
    ceiling = transport_ceiling(fake_url)

    env = _worker_env(database_url, fake_url)
    flask = str(Path(sys.executable).with_name("flask"))
    logs = Path(tempfile.mkdtemp(prefix="bench-dispatcher-"))
    workers = []
    for n in range(dispatchers):
        out = (logs / f"worker{n}.out").open("wb")
        err = (logs / f"worker{n}.err").open("wb")
        command = ["outbox", "work", "--batch-size", batch_size, "--concurrency", concurrency]
        workers.append(
            (
                subprocess.Popen(
                    [flask, "--app", "wsgi", *command],
                    cwd=ROOT,
                    env=env,
                    stdout=out,
                    stderr=err,
                ),
                logs / f"worker{n}.out",
            )
        )
    try:
        deadline = time.monotonic() + 60
        while not all("running" in path.read_text() for _, path in workers):
            if time.monotonic() > deadline or any(p.poll() is not None for p, _ in workers):
                raise SystemExit(f"dispatchers did not start; see {logs}")
            time.sleep(0.1)

        started = time.monotonic()
        queue_all(engine)
        while pending(engine):
            if time.monotonic() - started > 300:
                raise SystemExit(f"the outbox did not empty in 300 s; see {logs}")
            time.sleep(0.1)
        drained = time.monotonic() - started
        cpu = sum(_cpu_seconds(process.pid) for process, _ in workers)
    finally:
        for process, _ in workers:
            process.send_signal(signal.SIGTERM)
        for process, _ in workers:
            process.wait(30)
    ours.send("report")
    report = ours.recv()
    server.join(10)
    with engine.connect() as connection:
        sent = connection.execute(
            select(func.count()).select_from(Message).where(Message.status == "sent")
        ).scalar_one()
    engine.dispose()

    times: list[float] = report["times"]
    achieved = (len(times) - 1) / (times[-1] - times[0])
    duplicates = sum(count - 1 for count in report["texts"].values() if count > 1)
    lost = MESSAGES - len(report["texts"])
    ratio = achieved / RATE
    print(
        f"{len(times):,} accepted by the fake server in {times[-1] - times[0]:.2f}s "
        f"({achieved:.1f}/s, {ratio:.1%} of {RATE}/s); outbox drained in {drained:.2f}s; "
        f"{sent:,} messages marked sent; duplicates {duplicates}, lost {lost}; "
        f"{dispatchers} dispatcher processes x {concurrency} threads, batch {batch_size}, "
        f"{cpu * 1000 / MESSAGES:.2f} ms of dispatcher CPU per message (start-up included); "
        f"one process's HTTP ceiling {ceiling:.0f} req/s on this machine "
        f"({os.cpu_count()} CPUs); outcomes {dict(report['outcomes'])}; logs in {logs}",
        file=sys.stderr,
    )
    return [
        Result(
            "dispatcher",
            f"send rate, configured {RATE}/s ({MESSAGES:,} msgs, PostgreSQL + Redis)",
            achieved,
            "msg/s",
            f">= {GOAL_RATIO * RATE:.0f} ({GOAL_RATIO:.0%})",
            ratio >= GOAL_RATIO,
        ),
        Result(
            "dispatcher",
            "messages sent twice or lost",
            duplicates + lost + (MESSAGES - sent),
            "msgs",
            "0",
            duplicates == lost == 0 and sent == MESSAGES,
        ),
        Result(
            "dispatcher",
            "context: one process's HTTP ceiling (requests, no database)",
            ceiling,
            "req/s",
            "(none)",
            True,
        ),
    ]


def main() -> int:
    from tests.bench import table

    results = run()
    print(table(results))
    return 0 if all(r.met for r in results) else 1


if __name__ == "__main__":
    sys.exit(main())
