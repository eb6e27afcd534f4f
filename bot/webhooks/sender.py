"""Delivers the consent webhook outbox: claims the oldest row of each contact, POSTs it signed,
deletes it on a 2xx, and otherwise tries again later with exponential backoff, for as long as
it takes. A contact's next change waits until the one before it was delivered.

Runs in a thread of the web process (RUN_DISPATCHER) or of `flask --app wsgi outbox work`.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import datetime, timedelta

import requests
from sqlalchemy.engine import Engine

from bot.webhooks.signing import HEADER, signature
from storage import consent_webhooks
from storage.db import session_scope
from storage.models import ConsentWebhook
from storage.types import utcnow

log = logging.getLogger(__name__)
TIMEOUT = (3.05, 10.0)  # connect, read: a receiver slower than this is retried later
USER_AGENT = "optin-bot-consent-webhooks/1"


@dataclass(slots=True)
class WebhookStats:
    delivered: int = 0
    failed_attempts: int = 0


class WebhookSender:
    def __init__(
        self,
        *,
        engine: Engine,
        url: str,
        secret: str,
        http: requests.Session | None = None,
        batch_size: int = 50,
        concurrency: int = 4,
        lease: timedelta = timedelta(seconds=60),
        first_retry: float = 5.0,
        longest_retry: float = 3600.0,
        poll_seconds: float = 1.0,
        jitter: Callable[[], float] = lambda: random.uniform(0.8, 1.2),
        clock: Callable[[], datetime] = utcnow,
    ) -> None:
        self.engine = engine
        self.url = url
        self._secret = secret
        self.http = http or requests.Session()
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.first_retry = first_retry
        self.longest_retry = longest_retry
        self.poll_seconds = poll_seconds
        self._jitter = jitter
        self.clock = clock  # when rows are due and leased; tests move it to bring a retry due
        self.stats = WebhookStats()

    def backoff(self, attempts: int) -> float:
        """Seconds before the next try, after `attempts` failed ones (1, 2, ...)."""
        delay = min(self.first_retry * 2 ** (attempts - 1), self.longest_retry)
        return delay * self._jitter()

    def run_once(self) -> int:
        """Claim one batch and try each row once; the number of rows tried."""
        with session_scope(self.engine) as session:
            rows = consent_webhooks.claim(
                session, now=self.clock(), lease=self.lease, limit=self.batch_size
            )
        if not rows:
            return 0
        # Each row is the oldest of a different contact, so they may go out side by side.
        with ThreadPoolExecutor(max_workers=min(self.concurrency, len(rows))) as pool:
            list(pool.map(self._deliver, rows))
        return len(rows)

    def drain(self, max_rounds: int = 1000) -> int:
        """Try everything due now (tests and the terminal chat)."""
        total = 0
        for _ in range(max_rounds):
            tried = self.run_once()
            if not tried:
                break
            total += tried
        return total

    def run(self, stop: threading.Event) -> None:
        log.info("consent webhooks to %s: sending", _host(self.url))
        while not stop.is_set():
            try:
                tried = self.run_once()
            except Exception:  # the database away: the rows wait, nothing is lost
                log.exception("consent webhooks: claiming failed; trying again")
                tried = 0
            if not tried:
                stop.wait(self.poll_seconds)

    def _deliver(self, row: ConsentWebhook) -> None:
        assert row.id is not None
        body = row.body.encode()
        error = None
        started = time.monotonic()
        try:
            response = self.http.post(
                self.url,
                data=body,
                headers={
                    "Content-Type": "application/json",
                    "User-Agent": USER_AGENT,
                    HEADER: signature(self._secret, body),
                },
                timeout=TIMEOUT,
                allow_redirects=False,
            )
            if not 200 <= response.status_code < 300:
                error = f"HTTP {response.status_code}"
            response.close()
        except requests.RequestException as exc:
            error = type(exc).__name__
        with session_scope(self.engine) as session:
            if error is None:
                consent_webhooks.delivered(session, row.id)
            else:
                wait = self.backoff(row.attempts + 1)
                consent_webhooks.retry_later(
                    session,
                    row.id,
                    due_at=self.clock() + timedelta(seconds=wait),
                    error=error,
                )
        if error is None:
            self.stats.delivered += 1
            log.info(
                "consent webhook %s %s delivered in %.0f ms",
                row.type,
                row.event_id,
                (time.monotonic() - started) * 1000,
            )
        else:
            self.stats.failed_attempts += 1
            log.warning(
                "consent webhook %s %s not delivered (%s, attempt %d); retrying in %.1f s",
                row.type,
                row.event_id,
                error,
                row.attempts + 1,
                wait,
            )


def _host(url: str) -> str:
    """For logs: where to, without a path or query that might hold a token."""
    from urllib.parse import urlsplit

    return urlsplit(url).netloc
