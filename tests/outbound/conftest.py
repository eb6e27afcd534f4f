"""Fixtures for the outbox and the dispatcher: the fake Graph API, queued messages, workers.

Only Meta is replaced, by :class:`tests.fake_graph.FakeGraph`, a real HTTP server on loopback;
the dispatcher talks to it through the real GraphClient, with a short read timeout so that
injected timeouts cost half a second.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO, Any

import pytest
from flask import Flask
from sqlalchemy.engine import Engine
from sqlmodel import Session, col, select

import bot.outbound.settle
from bot.graph.client import GraphClient, pooled_session
from bot.graph.payloads import text_payload
from bot.outbound.loop import Dispatcher
from bot.wiring.services import services
from flows.versioning import text_version
from storage.consents import append_decision
from storage.contacts import lock_contact
from storage.db import session_scope
from storage.models import Message, OutboxItem
from storage.outbox import PRIORITY_ANSWER, enqueue_message
from storage.types import utcnow
from tests.fake_graph import FakeGraph

ROOT = Path(__file__).resolve().parents[2]
TOKEN = "test"
PHONE_NUMBER_ID = "106540352242922"
CLIENT_TIMEOUT = (1.0, 0.5)  # the fake's injected timeouts sleep 0.8 s


@pytest.fixture
def fake() -> Iterator[FakeGraph]:
    with FakeGraph(tokens={TOKEN}) as server:
        yield server


@pytest.fixture
def app_config(app_config: dict[str, str], fake: FakeGraph) -> dict[str, str]:
    """The suite's configuration, with the Graph API at the fake server."""
    return {
        **app_config,
        "WHATSAPP_ACCESS_TOKEN": TOKEN,
        "WHATSAPP_API_URL": fake.base_url,
        "WHATSAPP_PHONE_NUMBER_ID": PHONE_NUMBER_ID,
        "SEND_RATE_PER_SECOND": "1000",
    }


def graph_client(fake: FakeGraph, token: str = TOKEN) -> GraphClient:
    session = pooled_session(fake.base_url, pool_size=32)  # the session the app makes
    return GraphClient(session, access_token=token, base_url=fake.base_url, timeout=CLIENT_TIMEOUT)


MakeDispatcher = Callable[..., Dispatcher]


@pytest.fixture
def make_dispatcher(app: Flask, fake: FakeGraph) -> MakeDispatcher:
    """A dispatcher of the app sending to the fake server (with another token if given)."""

    def make(token: str = TOKEN, **overrides: Any) -> Dispatcher:
        overrides.setdefault("transport", graph_client(fake, token))
        return services(app).dispatcher(token=token, **overrides)

    return make


@pytest.fixture
def no_backoff(monkeypatch: pytest.MonkeyPatch) -> None:
    """Retries come due at once, and Meta's "slow down" costs a moment, not a second."""
    monkeypatch.setattr(bot.outbound.settle, "backoff", lambda attempts, rng=None: 0.0)
    monkeypatch.setattr(bot.outbound.settle, "THROUGHPUT_PENALTY_SECONDS", 0.02)


# --- queued messages --------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Queued:
    message_id: str
    contact_id: int
    to: str
    marker: str  # the text body: unique, so the fake server can count deliveries


def wa_id(number: int) -> str:
    return f"4915550{number:06d}"


def queue_texts(
    engine: Engine,
    count: int,
    *,
    recipients: list[str] | None = None,
    category: str | None = None,
    priority: int = PRIORITY_ANSWER,
    chunk: int = 500,
) -> list[Queued]:
    """Queue count text messages, one recipient each unless recipients are given (round robin).

    Through enqueue_message on a locked contact, as the webhook and the API do.
    """
    recipients = recipients or [wa_id(i) for i in range(count)]
    run = uuid.uuid4().hex[:8]
    queued: list[Queued] = []
    for start in range(0, count, chunk):
        with session_scope(engine) as session:
            contacts: dict[str, int] = {}
            for index in range(start, min(count, start + chunk)):
                to = recipients[index % len(recipients)]
                if to not in contacts:
                    contact = lock_contact(session, wa_id=to, user_id=None)
                    assert contact.id is not None
                    contacts[to] = contact.id
                marker = f"msg {run} {index:05d}"
                message = enqueue_message(
                    session,
                    contact_id=contacts[to],
                    phone_number_id=PHONE_NUMBER_ID,
                    payload=text_payload(to, marker),
                    type="text",
                    text=marker,
                    category=category,
                    priority=priority,
                )
                queued.append(Queued(message.id, contacts[to], to, marker))
    return queued


def decide(engine: Engine, contact_id: int, category: str, *, granted: bool, source: str) -> None:
    text = f"{'Yes' if granted else 'Stop'} {category}"
    with session_scope(engine) as session:
        append_decision(
            session,
            contact_id=contact_id,
            category=category,
            granted=granted,
            source=source,
            occurred_at=utcnow(),
            text=text,
            text_version=text_version(text),
            evidence={"test": "outbox"},
        )


def messages(engine: Engine, queued: list[Queued]) -> dict[str, Message]:
    with Session(engine) as session:
        rows = session.exec(
            select(Message).where(col(Message.id).in_([q.message_id for q in queued]))
        )
        return {row.id: row for row in rows}


def outbox(engine: Engine) -> list[OutboxItem]:
    with Session(engine) as session:
        return list(session.exec(select(OutboxItem).order_by(col(OutboxItem.id))))


# --- dispatcher processes ---------------------------------------------------------------------


class Worker:
    """`flask --app wsgi outbox work` in a process of its own, as production runs it."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, *options: str) -> None:
        self.name = name
        self.stdout_path = log_dir / f"{name}.out"
        self.stderr_path = log_dir / f"{name}.err"
        self._stdout: IO[bytes] = self.stdout_path.open("wb")
        self._stderr: IO[bytes] = self.stderr_path.open("wb")
        flask = str(Path(sys.executable).with_name("flask"))
        self.process = subprocess.Popen(
            [flask, "--app", "wsgi", "outbox", "work", *options],
            cwd=ROOT,
            env=env,
            stdout=self._stdout,
            stderr=self._stderr,
        )

    def output(self) -> str:
        return self.stdout_path.read_text()

    def wait_running(self, timeout: float = 30.0) -> None:
        deadline = time.monotonic() + timeout
        while "running" not in self.output():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} did not start:\n{self.errors()}")
            time.sleep(0.05)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator stops it: finish what is in flight, release the rest."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 20.0) -> str:
        """Terminate and wait; everything it printed (the stats line last)."""
        self.terminate()
        self.process.wait(timeout)
        self.close()
        return self.output()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            self.process.wait(10)
        self._stdout.close()
        self._stderr.close()

    def errors(self) -> str:
        return self.stderr_path.read_text()[-4000:]


@pytest.fixture
def worker_env(app_config: dict[str, str]) -> dict[str, str]:
    """The environment of a worker process: the test's settings, as production reads them."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("TEST_", "PYTEST_"))}
    env.update({k: v for k, v in app_config.items() if k != "RUN_DISPATCHER"})
    env["LOG_LEVEL"] = "WARNING"
    return env


@pytest.fixture
def workers(tmp_path: Path) -> Iterator[Callable[..., Worker]]:
    started: list[Worker] = []

    def start(env: dict[str, str], *options: str) -> Worker:
        worker = Worker(env, tmp_path, f"worker{len(started)}", *options)
        started.append(worker)
        return worker

    yield start
    for worker in started:
        worker.close()


def wait_until(predicate: Callable[[], bool], timeout: float, interval: float = 0.05) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(interval)
    return predicate()
