"""Webhook intake: a batch of 1000 messages (Meta's largest) stored, answered and redelivered,
timed against gunicorn's 30 s worker timeout; then single-message bodies posted one by one, as
Meta mostly sends them.

Run on SQLite with the in-process store and on PostgreSQL with Redis. The dialogue runs for
every message (each new contact gets its consent prompt queued), so this is the whole intake
path. A redelivery of the same batch must be cheap: the body's lookup answers it.
"""

from __future__ import annotations

import tempfile
import time
import uuid
from pathlib import Path

from bot import create_app
from bot.dev import simulate
from bot.wiring.services import services
from storage import migrate
from tests.bench import Result, fresh_schema, postgres_url, redis_url

ROOT = Path(__file__).resolve().parents[2]
BATCH = 1000
CONTACTS = 200  # five messages each, so contact locking is exercised
SINGLES = 500
WORKER_TIMEOUT = 30  # gunicorn's default: a worker silent this long is killed mid-request


def batch_body() -> bytes:
    bodies = [
        simulate.text_body(wa_id=f"1555{index % CONTACTS:07d}", text=f"hello {index}")
        for index in range(BATCH)
    ]
    return simulate.batch_body(*bodies)


def _measure(label: str, database_url: str, redis_url: str | None) -> list[Result]:
    config = {
        "APP_ENV": "production",
        "WHATSAPP_VERIFY_TOKEN": "bench",
        "WHATSAPP_APP_SECRET": "bench-secret",
        "SECRET_KEY": "bench-secret-key-of-32-characters-or-more",
        "DATABASE_URL": database_url,
        "OPTIN_CONFIG": str(ROOT / "optin.toml"),
        "RUN_DISPATCHER": "0",
        "MARK_INBOUND_READ": "0",
        "REDIS_PREFIX": f"optin-bench-{uuid.uuid4().hex[:8]}:",
    }
    if redis_url:
        config["REDIS_URL"] = redis_url
    app = create_app(config)
    client = app.test_client()
    body = batch_body()
    headers = {"X-Hub-Signature-256": simulate.sign(body, "bench-secret")}

    started = time.perf_counter()
    first = client.post("/webhook", data=body, headers=headers)
    first_seconds = time.perf_counter() - started
    assert first.status_code == 200 and first.json["messages"] == BATCH, first.json

    started = time.perf_counter()
    again = client.post("/webhook", data=body, headers=headers)
    again_seconds = time.perf_counter() - started
    assert again.status_code == 200 and again.json["duplicates"] == BATCH, again.json
    # What Meta mostly sends: one message per body, each its own POST and transaction.
    singles = [
        simulate.text_body(wa_id=f"1666{index % CONTACTS:07d}", text=f"hello {index}")
        for index in range(SINGLES)
    ]
    started = time.perf_counter()
    for single in singles:
        signed = {"X-Hub-Signature-256": simulate.sign(single, "bench-secret")}
        answer = client.post("/webhook", data=single, headers=signed)
        assert answer.status_code == 200 and answer.json["messages"] == 1, answer.json
    singles_rate = SINGLES / (time.perf_counter() - started)
    services(app).engine.dispose()

    rate = BATCH / first_seconds
    ratio = again_seconds / first_seconds
    return [
        Result(
            f"webhook {label}",
            "1000-message batch answered",
            first_seconds,
            "s",
            f"within gunicorn's worker timeout (< {WORKER_TIMEOUT} s)",
            first_seconds < WORKER_TIMEOUT,
        ),
        Result(
            f"webhook {label}",
            "1000-message batch stored",
            rate,
            "msg/s",
            "answered within 10 s (≥ 100 msg/s)",
            rate >= 100,
        ),
        Result(
            f"webhook {label}",
            f"{SINGLES} single-message bodies, one POST each (context)",
            singles_rate,
            "msg/s",
            "(none)",
            True,
        ),
        Result(
            f"webhook {label}",
            "redelivery / first delivery",
            ratio * 100,
            "%",
            "≤ 25%",
            ratio <= 0.25,
        ),
    ]


def run() -> list[Result]:
    results = []
    with tempfile.TemporaryDirectory() as folder:
        url = f"sqlite:///{folder}/bench.db"
        migrate.upgrade(url)
        results += _measure("sqlite", url, None)

    url = fresh_schema(postgres_url(), "bench_webhook")
    results += _measure("postgresql+redis", url, redis_url())
    return results


if __name__ == "__main__":
    from tests.bench import table

    print(table(run()))
