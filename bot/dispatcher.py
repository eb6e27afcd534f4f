"""Sends what the outbox holds: claims due rows, calls the Graph API, settles each row.

Retries follow Meta's error table (META.md): backoff with jitter for temporary errors, never for
permanent ones; 131050 also withdraws the marketing categories; 190 pauses every dispatcher
until the app runs with another token. Sending is at least once: only a crash between Meta's
answer and the commit can send a row twice.
"""

from __future__ import annotations

import hashlib
import logging
import os
import random
import socket
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError
from sqlmodel import Session

from bot.graph.client import Transport
from bot.graph.errors import GraphError, Outcome, classify
from bot.logmask import mask_number
from flows.catalog import Catalog
from flows.versioning import text_version
from storage.consents import may_send, withdraw
from storage.control import clear_flag, get_flag, set_flag
from storage.db import session_scope
from storage.kv import KeyValueStore
from storage.models import Contact
from storage.outbox import (
    Claimed,
    claim_due,
    release,
    settle_failed,
    settle_retry,
    settle_sent,
)
from storage.ratelimit import RateLimiter
from storage.suppression import is_suppressed
from storage.types import utcnow

log = logging.getLogger(__name__)

PAUSE_FLAG = "dispatch_paused"
MAX_ATTEMPTS = 12
BACKOFF_BASE_SECONDS = 2.0
BACKOFF_CAP_SECONDS = 15 * 60
PAIR_RATE_PAUSE_SECONDS = 6.0  # Meta paces one recipient at about one message per 6 s
THROUGHPUT_PENALTY_SECONDS = 1.0
MARKETING_OPT_OUT_TEXT = (
    "WhatsApp reported error 131050: this person stopped marketing messages from the business."
)


def token_fingerprint(token: str | None) -> str:
    return hashlib.sha256((token or "console").encode()).hexdigest()[:12]


_JITTER = random.SystemRandom()


def backoff(attempts: int, rng: random.Random = _JITTER) -> float:
    """Exponential backoff with jitter (between half and all of the step), capped."""
    ceiling = min(BACKOFF_CAP_SECONDS, BACKOFF_BASE_SECONDS * (2**attempts))
    return rng.uniform(ceiling / 2, ceiling)


@dataclass(slots=True)
class DispatchStats:
    sent: int = 0
    retried: int = 0
    failed: int = 0
    cancelled: int = 0
    released: int = 0


class Dispatcher:
    def __init__(
        self,
        *,
        engine: Engine,
        transport: Transport,
        store: KeyValueStore,
        limiter: RateLimiter,
        catalog: Catalog,
        suppression_key: bytes,
        token: str | None,
        worker_id: str | None = None,
        batch_size: int = 100,
        concurrency: int = 16,
        lease: timedelta = timedelta(seconds=60),
        sleep: Callable[[float], None] = time.sleep,
    ) -> None:
        self.engine = engine
        self.transport = transport
        self.store = store
        self.limiter = limiter
        self.catalog = catalog
        self.suppression_key = suppression_key
        self.fingerprint = token_fingerprint(token)
        self.worker = worker_id or f"{socket.gethostname()}:{os.getpid()}:{id(self):x}"
        self.batch_size = batch_size
        self.concurrency = concurrency
        self.lease = lease
        self.sleep = sleep
        self.stats = DispatchStats()
        self._stats_lock = threading.Lock()
        self._pool: ThreadPoolExecutor | None = None

    # --- the loop ---------------------------------------------------------------------------

    def paused_reason(self) -> str | None:
        """Why dispatching is paused, if it is (a 190 seen with the token in use now)."""
        with Session(self.engine) as session:
            flag = get_flag(session, PAUSE_FLAG)
        if flag is None:
            return None
        fingerprint, _, reason = flag.partition(" ")
        if fingerprint != self.fingerprint:
            return None  # a new token was configured since: try again
        return reason

    def run_once(self) -> int:
        """Claim one batch and send it; the number of rows handled."""
        if self.paused_reason() is not None:
            return 0
        with session_scope(self.engine) as session:
            claimed = claim_due(
                session, worker=self.worker, limit=self.batch_size, lease=self.lease
            )
        if not claimed:
            return 0
        if self.concurrency <= 1 or len(claimed) == 1:
            for row in claimed:
                self._send_guarded(row)
        else:
            if self._pool is None:
                self._pool = ThreadPoolExecutor(self.concurrency, thread_name_prefix="send")
            list(self._pool.map(self._send_guarded, claimed))
        return len(claimed)

    def drain(self, max_rounds: int = 1000) -> int:
        """Send everything due now (tests, the terminal chat)."""
        total = 0
        for _ in range(max_rounds):
            handled = self.run_once()
            if not handled:
                break
            total += handled
        return total

    def run(self, stop: threading.Event, wake: threading.Event | None = None) -> None:
        """Loop until stop is set, then give back whatever is held."""
        log.info("dispatcher %s started", self.worker)
        while not stop.is_set():
            try:
                handled = self.run_once()
            except DBAPIError as exc:
                log.error("dispatcher: storage unavailable (%s); retrying", exc.__class__.__name__)
                handled = 0
                stop.wait(2.0)
            if handled:
                continue
            if wake is not None:
                wake.wait(0.5)
                wake.clear()
            else:
                stop.wait(0.5)
        self.shutdown()

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True)
            self._pool = None
        with session_scope(self.engine) as session:
            released = release(session, worker=self.worker)
        if released:
            log.info("dispatcher %s released %d rows on shutdown", self.worker, released)

    # --- one row ----------------------------------------------------------------------------

    def _count(self, field: str) -> None:
        with self._stats_lock:
            setattr(self.stats, field, getattr(self.stats, field) + 1)

    def _send_guarded(self, row: Claimed) -> None:
        try:
            self._send(row)
        except DBAPIError:
            # The lease will run out and another round will pick the row up again.
            log.exception("dispatcher: could not settle outbox row %s", row.outbox_id)

    def _send(self, row: Claimed) -> None:
        now = utcnow()
        recipient = row.payload.get("to")
        if row.kind == "message" and not self._still_allowed(row):
            with session_scope(self.engine) as session:
                settle_failed(
                    session,
                    row,
                    worker=self.worker,
                    code=None,
                    status="cancelled",
                    title="cancelled: consent withdrawn or number suppressed before sending",
                    now=now,
                )
            self._count("cancelled")
            return
        if recipient and self.store.exists(f"pace:{recipient}"):
            with session_scope(self.engine) as session:
                settle_retry(
                    session,
                    row,
                    worker=self.worker,
                    count_attempt=False,
                    due_at=now + timedelta(seconds=PAIR_RATE_PAUSE_SECONDS),
                    error="paced: Meta's per-recipient rate",
                )
            self._count("released")
            return

        wait = self.limiter.acquire()
        if wait > 0:
            self.sleep(wait)
        try:
            if row.kind == "read_receipt":
                self.transport.mark_read(row.phone_number_id, row.payload["message_id"])
                wamid = None
            else:
                wamid = self.transport.send(row.phone_number_id, row.payload)
        except GraphError as error:
            self._settle_error(row, error)
            return
        with session_scope(self.engine) as session:
            settle_sent(session, row, worker=self.worker, wamid=wamid, now=utcnow())
        self._count("sent")

    def _still_allowed(self, row: Claimed) -> bool:
        """A business send is checked again at send time: consent may have gone since."""
        if row.contact_id is None:
            return True
        with Session(self.engine) as session:
            contact = session.get(Contact, row.contact_id)
            if contact is None:
                return False
            if is_suppressed(session, key=self.suppression_key, wa_id=contact.wa_id):
                return False
            if row.category is None:
                return True
            return may_send(session, contact_id=row.contact_id, category=row.category)

    def _settle_error(self, row: Claimed, error: GraphError) -> None:
        outcome = classify(error)
        now = utcnow()
        summary = f"{error.code or error.http_status}: {error.title or error.message}"[:500]
        recipient = row.payload.get("to")
        with session_scope(self.engine) as session:
            if outcome is Outcome.RETRY and row.attempts + 1 < MAX_ATTEMPTS:
                if error.code == 131056 and recipient:
                    self.store.add(f"pace:{recipient}", PAIR_RATE_PAUSE_SECONDS)
                if error.code in (130429, 80007, 4) or error.http_status == 429:
                    self.limiter.penalise(THROUGHPUT_PENALTY_SECONDS)
                delay = backoff(row.attempts)
                settle_retry(
                    session,
                    row,
                    worker=self.worker,
                    error=summary,
                    due_at=now + timedelta(seconds=delay),
                )
                self._count("retried")
                log.warning(
                    "send to %s will be retried in %.1fs: %s",
                    mask_number(recipient),
                    delay,
                    summary,
                )
                return
            if outcome is Outcome.PAUSE:
                set_flag(
                    session,
                    PAUSE_FLAG,
                    f"{self.fingerprint} access token rejected "
                    f"by Meta (error {error.code}); set a new WHATSAPP_ACCESS_TOKEN",
                )
                settle_retry(
                    session,
                    row,
                    worker=self.worker,
                    count_attempt=False,
                    error=summary,
                    due_at=now,
                )
                self._count("released")
                log.error("dispatching paused: Meta rejected the access token (error 190)")
                return
            title = error.title or error.message or "send failed"
            if outcome is Outcome.RETRY:
                title = f"gave up after {MAX_ATTEMPTS} attempts: {title}"
            settle_failed(session, row, worker=self.worker, code=error.code, title=title, now=now)
            if outcome is Outcome.OPTED_OUT and row.contact_id is not None:
                withdraw(
                    session,
                    contact_id=row.contact_id,
                    categories=self.catalog.marketing_ids,
                    source="meta",
                    occurred_at=now,
                    text=MARKETING_OPT_OUT_TEXT,
                    text_version=text_version(MARKETING_OPT_OUT_TEXT),
                    evidence={"error_code": "131050", "message_id": row.message_id or ""},
                )
        self._count("failed")
        log.warning("send to %s failed for good: %s", mask_number(recipient), summary)


def resume(engine: Engine) -> bool:
    with session_scope(engine) as session:
        return clear_flag(session, PAUSE_FLAG)
