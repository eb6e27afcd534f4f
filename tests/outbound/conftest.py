"""Fixtures for the outbox and the dispatcher: the fake Graph API, queued messages, workers.

Only Meta is replaced, by :class:`tests.fake_graph.FakeGraph`, a real HTTP server on loopback;
the dispatcher talks to it through the real GraphClient. Tests wait for states (a gate's held
requests, a dispatcher drained, a count of settlements), never for time to pass: on a busy
machine any delay may be too short.
"""

from __future__ import annotations

import os
import select as io_select
import signal
import subprocess
import sys
import threading
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
from bot.graph.client import GraphClient
from bot.graph.http import PooledHTTP
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
    http = PooledHTTP(fake.base_url, pool_size=32)  # the client the app makes
    return GraphClient(http, access_token=token, base_url=fake.base_url, timeout=timeout)


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
                message_id = enqueue_message(
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
                queued.append(Queued(message_id, contacts[to], to, marker))
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


def wait_exit(process: subprocess.Popen[bytes], timeout: float) -> int | None:
    """Its exit code, or None if it still runs after timeout. Waits on a pidfd, which the kernel
    makes readable at exit, where Popen.wait(timeout) would poll in small sleeps."""
    if process.poll() is not None:
        return process.returncode
    try:
        handle = os.pidfd_open(process.pid)
    except ProcessLookupError:  # ended and reaped meanwhile
        return process.wait()
    try:
        ready, _, _ = io_select.select([handle], [], [], timeout)
    finally:
        os.close(handle)
    return process.wait() if ready else None


class Output:
    """What a process writes to one pipe: copied to a file as it comes, and waited on for a
    text, without polling (the reader thread wakes the waiters)."""

    def __init__(self, pipe: IO[bytes], path: Path) -> None:
        self.path = path
        self._text: list[str] = []
        self._ended = False
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._copy, args=(pipe,), daemon=True)
        self._reader.start()

    def _copy(self, pipe: IO[bytes]) -> None:
        with self.path.open("wb") as copy:
            for line in iter(pipe.readline, b""):
                copy.write(line)
                copy.flush()
                with self._changed:
                    self._text.append(line.decode(errors="replace"))
                    self._changed.notify_all()
        with self._changed:
            self._ended = True
            self._changed.notify_all()

    def text(self) -> str:
        with self._changed:
            return "".join(self._text)

    def wait_for(self, text: str, count: int = 1, timeout: float = 30.0) -> bool:
        """Until text has appeared count times (False if the pipe closed or time ran out)."""
        with self._changed:
            self._changed.wait_for(
                lambda: "".join(self._text).count(text) >= count or self._ended, timeout
            )
            return "".join(self._text).count(text) >= count

    def close(self, timeout: float = 10.0) -> None:
        """Once the process has ended: wait for the rest of its output."""
        self._reader.join(timeout)


class Worker:
    """`flask --app wsgi outbox work` in a process of its own, as production runs it."""

    def __init__(self, env: dict[str, str], log_dir: Path, name: str, *options: str) -> None:
        self.name = name
        flask = str(Path(sys.executable).with_name("flask"))
        self.process = subprocess.Popen(
            [flask, "--app", "wsgi", "outbox", "work", *options],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        assert self.process.stdout is not None and self.process.stderr is not None
        self.stdout = Output(self.process.stdout, log_dir / f"{name}.out")
        self.stderr = Output(self.process.stderr, log_dir / f"{name}.err")

    def output(self) -> str:
        return self.stdout.text()

    def wait_running(self, timeout: float = 30.0) -> None:
        if not self.stdout.wait_for("running", timeout=timeout):
            raise AssertionError(f"{self.name} did not start:\n{self.errors()}")

    def wait_logged(self, text: str, timeout: float = 30.0) -> None:
        """Until its log (stderr) says text: a separate process, whose state only its output
        shows."""
        if not self.stderr.wait_for(text, timeout=timeout):
            raise AssertionError(f"{self.name} never logged {text!r}:\n{self.errors()}")

    def kill(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        wait_exit(self.process, 10)

    def terminate(self) -> None:
        """SIGTERM, as an orchestrator stops it: finish what is in flight, release the rest."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)

    def stop(self, timeout: float = 60.0) -> str:
        """Terminate and wait; everything it printed (the stats line last). One that does not
        stop is aborted, and fails the test with every thread's stack (faulthandler)."""
        self.terminate()
        if wait_exit(self.process, timeout) is None:
            self.process.send_signal(signal.SIGABRT)
            wait_exit(self.process, 10)
            self.close()
            pytest.fail(f"{self.name} did not stop within {timeout} s:\n{self.errors()}")
        self.close()
        return self.output()

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            wait_exit(self.process, 10)
        self.stdout.close()
        self.stderr.close()

    def errors(self) -> str:
        return self.stderr.text()[-4000:]


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
