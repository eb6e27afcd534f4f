"""Fixtures for the outbox and the dispatcher: the fake Graph API, queued messages, workers.

Only Meta is replaced, by :class:`tests.fake_graph.FakeGraph`, a real HTTP server on loopback;
the dispatcher talks to it through the real GraphClient. Tests wait for states (a gate's held
requests, a dispatcher drained, a count of settlements), never for time to pass: on a busy
machine any delay may be too short.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
import traceback
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import IO, Any

import pytest
from flask import Flask
from sqlalchemy import update
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
# Read timeout: longer than any gate holds an answer and any stall of a busy machine. A read
# timeout on a delivered message would be a duplicate send the test did not ask for; the fake's
# injected timeouts need none (it drops the connection), and FakeGraph.hang tests a real one.
CLIENT_TIMEOUT = (3.05, 30.0)


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


def graph_client(
    fake: FakeGraph, token: str = TOKEN, timeout: tuple[float, float] = CLIENT_TIMEOUT
) -> GraphClient:
    session = pooled_session(fake.base_url, pool_size=32)  # the session the app makes
    return GraphClient(session, access_token=token, base_url=fake.base_url, timeout=timeout)


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
    now: datetime | None = None,
) -> list[Queued]:
    """Queue count text messages, one recipient each unless recipients are given (round robin).

    Through enqueue_message on a locked contact, as the webhook and the API do; due at now
    (a test's ManualClock), or at once.
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
                    now=now,
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


def end_leases(engine: Engine) -> int:
    """End every lease now, as time would: for a dispatcher in another process, whose clock a
    test cannot move. How many rows were held."""
    with session_scope(engine) as session:
        result = session.execute(
            update(OutboxItem)
            .where(col(OutboxItem.claimed_until).is_not(None))
            .values(claimed_until=utcnow() - timedelta(seconds=1))
        )
        return int(result.rowcount)  # type: ignore[attr-defined]


# --- a dispatcher in a thread -----------------------------------------------------------------


def thread_stacks() -> str:
    """Every thread's stack, for a failure message."""
    names = {thread.ident: thread.name for thread in threading.enumerate()}
    return "\n".join(
        f"--- {names.get(ident, ident)}\n" + "".join(traceback.format_stack(frame))
        for ident, frame in sys._current_frames().items()
    )


class Running:
    """A dispatcher's run() in a thread of its own, with the stop and wake events the app and
    `outbox work` give it."""

    def __init__(self, dispatcher: Dispatcher) -> None:
        self.dispatcher = dispatcher
        self.stop_event = threading.Event()
        self.wake = threading.Event()
        # A daemon: one that hangs fails its test (stop(), or the timeout with every stack)
        # and must not also keep the run from ending.
        self.thread = threading.Thread(
            target=dispatcher.run,
            args=(self.stop_event, self.wake),
            name="test-dispatcher",
            daemon=True,
        )

    def poke(self) -> None:
        """Rows were queued: look now (the app sets its wake event after each commit)."""
        self.wake.set()

    def wait_drained(self, timeout: float = 30.0) -> bool:
        return self.dispatcher.wait_drained(timeout)

    def stop(self, timeout: float = 30.0) -> None:
        """Stop it and wait; a dispatcher that does not stop fails the test with its stack."""
        self.stop_event.set()
        self.wake.set()
        self.thread.join(timeout)
        if self.thread.is_alive():
            pytest.fail(f"the dispatcher did not stop within {timeout} s\n{thread_stacks()}")


@contextmanager
def running(dispatcher: Dispatcher) -> Iterator[Running]:
    run = Running(dispatcher)
    run.thread.start()
    try:
        yield run
    finally:
        run.stop()


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

    def wait_logged(self, text: str, timeout: float = 30.0) -> None:
        """Until its log (stderr) says text; it is a separate process, whose state only its
        output shows."""
        deadline = time.monotonic() + timeout
        while text not in self.stderr_path.read_text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError(f"{self.name} never logged {text!r}:\n{self.errors()}")
            time.sleep(0.02)

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(10)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator stops it: finish what is in flight, release the rest."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60.0) -> str:
        """Terminate and wait; everything it printed (the stats line last). One that does not
        stop is aborted, and fails the test with every thread's stack (faulthandler)."""
        self.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            self.process.send_signal(signal.SIGABRT)
            self.process.wait(10)
            self.close()
            pytest.fail(f"{self.name} did not stop within {timeout} s:\n{self.errors()}")
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
    env["PYTHONFAULTHANDLER"] = "1"  # aborted when hung: every thread's stack to stderr
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
