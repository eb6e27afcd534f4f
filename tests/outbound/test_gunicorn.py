"""The app as deployed: gunicorn serving wsgi:app, each worker sending from its dispatcher thread.

No separate `outbox work` process: what `make run` and a plain gunicorn deployment rely on.
"""

from __future__ import annotations

import re
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
import requests
from flask import Flask
from sqlalchemy.engine import Engine

from bot.dev import simulate
from tests.conftest import APP_SECRET, ROOT
from tests.fake_graph import FakeGraph
from tests.outbound.conftest import Output, Worker, outbox, wa_id, wait_exit
from tests.waiting import wait_until

# Messages per second, shared by the two workers: slow enough that once Meta answers again
# during the shutdown, nothing beyond what the workers hold goes out before they stop claiming.
RATE = 40
# A prompt and a read receipt each: more rows than the two workers' dispatchers hold at once
# (a batch of 100 each), so some are always still waiting when SIGTERM comes.
BACKLOG_CONTACTS = 120
_LISTENING = re.compile(r"Listening at: (http://127\.0\.0\.1:\d+)")


class Gunicorn:
    def __init__(self, env: dict[str, str], log_dir: Path) -> None:
        self.log_dir = log_dir
        self.process = subprocess.Popen(
            [
                str(Path(sys.executable).with_name("gunicorn")),
                "--bind",
                "127.0.0.1:0",  # a free port, read back from the log
                "--workers",
                "2",
                "--threads",
                "4",
                "wsgi:app",
            ],
            cwd=ROOT,
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
        )
        assert self.process.stdout is not None
        self.output = Output(self.process.stdout, log_dir / "gunicorn.log")
        self.url = self._wait_listening()

    def log(self) -> str:
        return self.output.text()[-4000:]

    def wait_logged(self, text: str, count: int = 1, timeout: float = 60.0) -> None:
        """Until its log says text count times (a separate process: its log shows its state)."""
        if not self.output.wait_for(text, count, timeout):
            raise AssertionError(f"gunicorn never logged {text!r} {count} times:\n{self.log()}")

    def _wait_listening(self, timeout: float = 60.0) -> str:
        self.wait_logged("Booting worker", count=2, timeout=timeout)
        match = _LISTENING.search(self.output.text())
        assert match, f"gunicorn did not say where it listens:\n{self.log()}"
        # A worker logs that it boots before it imports the app, which takes seconds on a
        # loaded machine: the first answer says one is serving (the socket is shared, so the
        # requests that follow go to a worker that is ready).
        health = requests.get(f"{match.group(1)}/healthz", timeout=timeout)
        assert health.status_code == 200, self.log()
        return match.group(1)

    def post_message(self, wa: str, text: str) -> None:
        body = simulate.text_body(wa_id=wa, text=text)
        response = requests.post(
            f"{self.url}/webhook",
            data=body,
            headers={
                "Content-Type": "application/json",
                "X-Hub-Signature-256": simulate.sign(body, APP_SECRET),
            },
            timeout=60,  # a wait, not a deadline: a busy machine answers late
        )
        assert response.status_code == 200, response.text

    def close(self) -> None:
        if self.process.poll() is None:
            self.process.kill()
            wait_exit(self.process, 10)
        self.output.close()


@pytest.fixture
def gunicorn(worker_env: dict[str, str], tmp_path: Path) -> Iterator[Gunicorn]:
    # A modest rate, so that a backlog is still waiting when the workers are told to stop.
    env = {**worker_env, "RUN_DISPATCHER": "1", "SEND_RATE_PER_SECOND": str(RATE)}
    server = Gunicorn(env, tmp_path)
    yield server
    server.close()


def answers_to(fake: FakeGraph, to: str) -> list[str]:
    """The outcomes of the messages (not read receipts) sent to one number."""
    return [r.outcome for r in fake.attempts_to(to) if r.payload.get("status") != "read"]


# A gunicorn master, two workers and a worker process, each a Python start-up of seconds on a
# loaded two-core machine: more than the suite's two minutes before a hang fails it.
@pytest.mark.timeout(300)
def test_under_gunicorn_every_message_is_answered_once_and_sigterm_releases_the_rest(
    app: Flask, engine: Engine, fake: FakeGraph, gunicorn: Gunicorn, worker_env: dict[str, str]
) -> None:
    first = [wa_id(n) for n in range(12)]
    for to in first:
        gunicorn.post_message(to, "hi")

    # Each gets the consent prompt from a worker's dispatcher thread, once.
    assert fake.wait_for(lambda f: all(answers_to(f, to) for to in first)), gunicorn.log()
    # Nothing more can follow once the outbox is empty: every row was sent and settled.
    assert wait_until(lambda: not outbox(engine), timeout=30), gunicorn.log()
    assert {to: answers_to(fake, to) for to in first} == {to: ["delivered"] for to in first}

    # A backlog of prompts and read receipts, stopped part way: twenty sends answered, the next
    # ones waiting for Meta when SIGTERM comes. Meta answers again only once both workers are
    # exiting: they go on claiming while they exit, after Python's thread pools refuse new work.
    meta = fake.hold()
    meta.release(20)
    before = len(fake.snapshot())
    second = [wa_id(n) for n in range(100, 100 + BACKLOG_CONTACTS)]
    for to in second:
        gunicorn.post_message(to, "hi")
    assert fake.wait_for(lambda f: len(f.snapshot()) - before == 20 and meta.held >= 1), (
        gunicorn.log()
    )
    gunicorn.process.send_signal(signal.SIGTERM)
    gunicorn.wait_logged("Worker exiting", count=2)
    meta.release()
    assert wait_exit(gunicorn.process, 60) == 0, gunicorn.log()
    gunicorn.output.close()
    assert "Traceback" not in gunicorn.output.text(), gunicorn.log()

    # The workers finished what was in flight and gave back the rest: nothing is left claimed.
    left = outbox(engine)
    assert left, "SIGTERM should have come while a backlog was waiting"
    assert all(row.claimed_by is None for row in left), gunicorn.log()
    rest = Worker(worker_env, gunicorn.log_dir, "after", "--concurrency", "4")
    try:
        assert fake.wait_for(lambda f: all(answers_to(f, to) for to in second)), rest.errors()
        assert wait_until(lambda: not outbox(engine), timeout=30), rest.errors()
    finally:
        rest.stop()
    # Every contact answered exactly once, across the shutdown.
    assert {to: answers_to(fake, to) for to in second} == {to: ["delivered"] for to in second}
