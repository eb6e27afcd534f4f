"""One send attempt: the consent check at send time, the shared rate, the Graph API call, and
what came of it (an :class:`Attempt`, settled later with others). No database writes here."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Collection
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from sqlalchemy.engine import Engine
from sqlmodel import Session

from bot.graph.client import Transport
from bot.graph.errors import GraphError, GraphTransportError, Outcome, classify
from bot.graph.payloads import recipient_of
from bot.outbound.halt import Halt, HaltState
from storage.outbox import Claimed
from storage.ratelimit import RateLimiter
from storage.send_check import refused_now

log = logging.getLogger(__name__)

# How stale the send-time consent check may be: it is read per batch, again when this old.
CONSENT_CHECK_MAX_AGE_SECONDS = 0.2


class AttemptKind(StrEnum):
    SENT = "sent"  # Meta accepted it (with a wamid, unless a read receipt)
    ERROR = "error"  # Meta refused it or did not answer: the error decides what follows
    REFUSED = "refused"  # the consent check at send time said no: cancelled, never sent
    PACED = "paced"  # its recipient is being paced: due again after Meta's pause
    SKIPPED = "skipped"  # not tried (stopping, lease running out, storage or Redis away)


@dataclass(frozen=True, slots=True)
class Attempt:
    """What happened to one claimed row; settled later, together with others."""

    row: Claimed
    kind: AttemptKind
    wamid: str | None = None
    error: GraphError | None = None
    reason: str = ""


@dataclass(frozen=True, slots=True, kw_only=True)
class ConsentCheck:
    """Reads which rows may no longer be sent (consent withdrawn, number erased), and why."""

    engine: Engine
    suppression_key: bytes
    marketing: Collection[str]

    def refused(self, rows: list[Claimed]) -> dict[int, str]:
        with Session(self.engine) as session:
            return refused_now(
                session, rows, suppression_key=self.suppression_key, marketing=self.marketing
            )


class Batch:
    """One claimed batch: when its lease started, and its send-time consent check."""

    def __init__(
        self,
        rows: list[Claimed],
        *,
        check: ConsentCheck,
        lease: timedelta,
        monotonic: Callable[[], float] = time.monotonic,
    ) -> None:
        self.rows = rows
        self._monotonic = monotonic  # tests hold it to age the consent check at will
        self.started = monotonic()
        self._check = check
        self._lease = lease
        self._lock = threading.Lock()
        self._checked_at = float("-inf")
        self._refused: dict[int, str] = {}
        # Rows whose check has not been asked yet: only these are read again.
        self._unasked = {row.outbox_id for row in rows}
        self._asked = threading.Lock()

    def lease_running_out(self) -> bool:
        # A send that starts in the second half of the lease could outlast it, and another
        # dispatcher would then claim the row and send it a second time.
        return self._monotonic() - self.started > self._lease.total_seconds() / 2

    def refusal(self, row: Claimed) -> str | None:
        """Why this row may not be sent now (consent withdrawn, number erased), if so.

        Read for the whole batch at once, and again once older than CONSENT_CHECK_MAX_AGE_SECONDS
        for the rows not yet asked about: the check stays close to the send without a query per
        message, and a batch's later reads shrink as its rows go out.
        """
        if row.kind != "message" or row.contact_id is None:
            return None
        if self._monotonic() - self._checked_at > CONSENT_CHECK_MAX_AGE_SECONDS:
            # The first check of a batch waits for the read; later ones let one thread read
            # again while the others go on with the previous answer, a moment older.
            first = self._checked_at == float("-inf")
            if self._lock.acquire(blocking=first):
                try:
                    if self._monotonic() - self._checked_at > CONSENT_CHECK_MAX_AGE_SECONDS:
                        self._read_again()
                finally:
                    self._lock.release()
        with self._asked:
            self._unasked.discard(row.outbox_id)
        return self._refused.get(row.outbox_id)

    def _read_again(self) -> None:
        """Check the rows not asked about yet (this one among them); the others keep the
        answer they were given."""
        with self._asked:
            unasked = set(self._unasked)
        refused = self._check.refused([row for row in self.rows if row.outbox_id in unasked])
        kept = {
            outbox_id: why for outbox_id, why in self._refused.items() if outbox_id not in unasked
        }
        self._refused, self._checked_at = {**kept, **refused}, self._monotonic()


class Sender:
    """Tries one row: checks it may still go, waits for the shared rate, calls the Graph API."""

    def __init__(
        self,
        *,
        transport: Transport,
        limiter: RateLimiter,
        halt: HaltState,
        sleep: Callable[[float], None],
    ) -> None:
        self.transport = transport
        self.limiter = limiter
        self.halt = halt
        self.sleep = sleep

    def attempt(self, row: Claimed, batch: Batch) -> Attempt:
        try:
            return self._attempt(row, batch)
        except Exception as exc:
            # Not the Graph API's doing (storage or Redis unreachable): give the row back.
            # Only the type: a storage error's text would quote the SQL and its parameters.
            log.warning(
                "dispatcher: could not attempt outbox row %s: %s", row.outbox_id, type(exc).__name__
            )
            return Attempt(row, AttemptKind.SKIPPED, reason=type(exc).__name__)

    def _attempt(self, row: Claimed, batch: Batch) -> Attempt:
        if not self.halt.sends():
            return Attempt(row, AttemptKind.SKIPPED, reason="stopping")
        refusal = batch.refusal(row)
        if refusal is not None:
            return Attempt(row, AttemptKind.REFUSED, reason=refusal)
        wait = self.limiter.acquire(recipient_of(row.payload))
        if wait is None:
            return Attempt(row, AttemptKind.PACED)
        if wait > 0:
            self.sleep(wait)
        if not self.halt.sends() or batch.lease_running_out():
            return Attempt(row, AttemptKind.SKIPPED, reason="stopping or lease running out")
        try:
            if row.kind == "read_receipt":
                self.transport.mark_read(row.phone_number_id, row.payload["message_id"])
                wamid = None
            else:
                wamid = self.transport.send(row.phone_number_id, row.payload)
        except GraphError as error:
            if classify(error) is Outcome.PAUSE:
                # Every other send would be refused too: the lanes give their rows back.
                self.halt.halt(Halt.TOKEN_REJECTED)
            return Attempt(row, AttemptKind.ERROR, error=error)
        except Exception as exc:
            # A transport fault we do not know: retried with backoff, and failed in the end.
            return Attempt(row, AttemptKind.ERROR, error=GraphTransportError.from_exception(exc))
        return Attempt(row, AttemptKind.SENT, wamid=wamid)
