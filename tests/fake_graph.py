"""A stand-in for Meta's Graph API: a real threaded HTTP server on loopback.

It answers ``POST /{version}/{phone_number_id}/messages`` the way the Cloud API does (a wamid for a
message, ``{"success": true}`` for a read receipt), checks the bearer token, records every request
with its arrival time, and can be told to fail: a seeded fraction of calls failing with HTTP 500,
HTTP 429, Meta's 130429 or a timeout, forced error codes per recipient, expired tokens, latency
(for every call, or for one recipient's).

Injected timeouts sleep past the client's read timeout and then answer an error *without*
recording a delivery, so a test can demand "delivered exactly once": the only duplicates left are
the ones at-least-once delivery allows (a client that died after Meta accepted its request).
"""

from __future__ import annotations

import contextlib
import itertools
import json
import random
import re
import threading
import time
import uuid
from collections import Counter
from dataclasses import dataclass, field
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

VERSION = "v23.0"
FAILURE_KINDS = ("500", "429", "130429", "timeout")
_PATH = re.compile(r"^/(v\d+\.\d+)/([^/]+)/messages$")

# Meta's codes, with the HTTP status and text the Cloud API answers them with.
META_ERRORS: dict[int, tuple[int, str]] = {
    130429: (400, "Rate limit hit"),
    131056: (400, "(Business Account, Consumer Account) pair rate limit hit"),
    131047: (400, "Re-engagement message"),
    131026: (400, "Message Undeliverable"),
    131050: (400, "User has stopped marketing messages"),
    131049: (400, "This message was not delivered to maintain healthy ecosystem engagement"),
    131000: (500, "Something went wrong"),
    100: (400, "Invalid parameter"),
    190: (401, "Error validating access token: Session has expired"),
    131062: (400, "Business-scoped user ID recipients are not supported for this message"),
}


def meta_error_body(code: int, fbtrace_id: str) -> dict[str, Any]:
    _, title = META_ERRORS.get(code, (400, "Error"))
    return {
        "error": {
            "message": f"(#{code}) {title}",
            "type": "OAuthException",
            "code": code,
            "error_data": {"messaging_product": "whatsapp", "details": title},
            "fbtrace_id": fbtrace_id,
        }
    }


def _addressee(payload: dict[str, Any]) -> Any:
    """As Meta reads a send body: `to` if present, else `recipient`."""
    return payload.get("to") or payload.get("recipient")


def text_of(payload: dict[str, Any]) -> str | None:
    """The text body of a text message: tests put a unique marker in it."""
    text = payload.get("text")
    return text.get("body") if isinstance(text, dict) else None


@dataclass(frozen=True, slots=True)
class Received:
    """One request as the server saw it."""

    at: float  # time.monotonic() on arrival, before any latency
    token: str | None
    phone_number_id: str
    payload: dict[str, Any]
    outcome: str  # "delivered", "read", "timeout", or "error <code or HTTP status>"
    wamid: str | None = None

    @property
    def to(self) -> str | None:
        return self.payload.get("to")

    @property
    def recipient(self) -> str | None:
        """Whom Meta delivers to: `to` wins over `recipient` (a business-scoped user id)."""
        return self.payload.get("to") or self.payload.get("recipient")

    @property
    def text(self) -> str | None:
        return text_of(self.payload)


@dataclass
class _Forced:
    code: int
    remaining: int | None  # None: every time


@dataclass
class FakeGraph:
    """Start with ``with FakeGraph() as fake:``; point a GraphClient at ``fake.base_url``."""

    tokens: set[str] = field(default_factory=lambda: {"test"})
    failure_rate: float = 0.0
    failure_kinds: tuple[str, ...] = FAILURE_KINDS
    seed: int = 0
    latency: float = 0.0
    timeout_sleep: float = 0.8  # longer than the read timeout the tests give their clients
    received: list[Received] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self.tokens = set(self.tokens)  # a copy: add_token must not change the caller's set
        self._expired: set[str] = set()
        self._slow: dict[str, float] = {}
        self._forced: dict[str, list[_Forced]] = {}
        self._rng = random.Random(self.seed)
        self._lock = threading.Lock()
        self._ids = itertools.count(1)
        self._run = uuid.uuid4().hex[:8].upper()
        self._server: ThreadingHTTPServer | None = None

    # --- lifecycle --------------------------------------------------------------------------

    def start(self) -> FakeGraph:
        fake = self

        class Handler(_Handler):
            graph = fake

        server = _Server(("127.0.0.1", 0), Handler)
        threading.Thread(
            target=server.serve_forever, args=(0.05,), name="fake-graph", daemon=True
        ).start()
        self._server = server
        return self

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None

    def __enter__(self) -> FakeGraph:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()

    @property
    def url(self) -> str:
        assert self._server is not None, "start the fake server first"
        return f"http://127.0.0.1:{self._server.server_port}"

    @property
    def base_url(self) -> str:
        return f"{self.url}/{VERSION}"

    # --- behaviour --------------------------------------------------------------------------

    def force(self, recipient: str, code: int, *, times: int | None = None) -> None:
        """Answer sends to recipient with Meta's error code (the next `times` sends, or all)."""
        with self._lock:
            self._forced.setdefault(recipient, []).append(_Forced(code, times))

    def slow(self, recipient: str, seconds: float) -> None:
        """Answer sends to recipient this much later than the others (on top of latency)."""
        with self._lock:
            self._slow[recipient] = seconds

    def expire_token(self, token: str) -> None:
        """Every request made with this token is refused with error 190 from now on."""
        with self._lock:
            self._expired.add(token)

    def add_token(self, token: str) -> None:
        with self._lock:
            self.tokens.add(token)

    # --- what it saw ------------------------------------------------------------------------

    def snapshot(self) -> list[Received]:
        with self._lock:
            return list(self.received)

    def delivered(self) -> Counter[str]:
        """How many times each text body was accepted (a count above 1 is a duplicate)."""
        return Counter(
            r.text for r in self.snapshot() if r.outcome == "delivered" and r.text is not None
        )

    def deliveries(self) -> list[Received]:
        return [r for r in self.snapshot() if r.outcome == "delivered"]

    def attempts_to(self, recipient: str) -> list[Received]:
        return [r for r in self.snapshot() if r.recipient == recipient]

    def wait_for(self, predicate: Any, timeout: float = 10.0, interval: float = 0.02) -> bool:
        """Poll predicate(self) until true or timeout; whether it became true."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if predicate(self):
                return True
            time.sleep(interval)
        return bool(predicate(self))

    # --- deciding an answer (called by the handler) -----------------------------------------

    def _decide(self, token: str | None, payload: dict[str, Any]) -> tuple[str, int | None]:
        """("ok" | "timeout" | "http", code or status) for one request."""
        with self._lock:
            if token is None or token not in self.tokens or token in self._expired:
                return "meta", 190
            forced = self._forced.get(str(_addressee(payload)))
            if forced:
                rule = forced[0]
                if rule.remaining is not None:
                    rule.remaining -= 1
                    if rule.remaining <= 0:
                        forced.pop(0)
                return "meta", rule.code
            if self.failure_rate and self._rng.random() < self.failure_rate:
                kind = self._rng.choice(self.failure_kinds)
                if kind == "timeout":
                    return "timeout", None
                if kind == "130429":
                    return "meta", 130429
                return "http", int(kind)
            return "ok", None

    def _record(self, received: Received) -> None:
        with self._lock:
            self.received.append(received)

    def _new_wamid(self) -> str:
        return self.wamid(next(self._ids))

    def wamid(self, number: int) -> str:
        """The wamid of the number-th accepted message (1 for the first).

        Unique to this server, so that test runs sharing a database never collide.
        """
        return f"wamid.FAKE{self._run}{number:08d}"


class _Server(ThreadingHTTPServer):
    daemon_threads = True
    # The listen() backlog, fixed when the socket opens: the default of 5 drops the SYNs of a
    # dispatcher's threads connecting at once, and each dropped one costs a 1 s retransmit.
    request_queue_size = 256


class _Handler(BaseHTTPRequestHandler):
    graph: FakeGraph
    protocol_version = "HTTP/1.1"  # keep-alive, as Meta's front end does
    disable_nagle_algorithm = True  # small answers leave at once, not after a delayed ACK

    def log_message(self, format: str, *args: Any) -> None:
        pass  # the test output stays readable; everything is in graph.received

    def do_POST(self) -> None:
        arrived = time.monotonic()
        length = int(self.headers.get("Content-Length") or 0)
        raw = self.rfile.read(length) if length else b""
        match = _PATH.match(self.path)
        if match is None:
            self._answer(404, {"error": {"message": "Unknown path", "code": 100}})
            return
        phone_number_id = match.group(2)
        try:
            payload = json.loads(raw)
        except ValueError:
            payload = None
        if not isinstance(payload, dict) or payload.get("messaging_product") != "whatsapp":
            self._answer(400, meta_error_body(100, self._trace()))
            return
        authorization = self.headers.get("Authorization") or ""
        token = authorization[7:] if authorization.startswith("Bearer ") else None

        graph = self.graph
        delay = graph.latency + graph._slow.get(str(_addressee(payload)), 0.0)
        if delay:
            time.sleep(delay)
        verdict, value = graph._decide(token, payload)

        def record(outcome: str, wamid: str | None = None) -> None:
            graph._record(Received(arrived, token, phone_number_id, payload, outcome, wamid))

        if verdict == "timeout":
            # Sleep past the client's read timeout; nothing was delivered.
            record("timeout")
            time.sleep(graph.timeout_sleep)
            self._answer(500, {"error": {"message": "timed out", "code": 2}})
            return
        if verdict == "http":
            record(f"error {value}")
            self._answer(int(value or 500), {"error": {"message": f"HTTP {value}"}})
            return
        if verdict == "meta":
            code = int(value or 0)
            record(f"error {code}")
            status, _ = META_ERRORS.get(code, (400, ""))
            self._answer(status, meta_error_body(code, self._trace()))
            return
        if payload.get("status") == "read":
            record("read")
            self._answer(200, {"success": True})
            return
        wamid = graph._new_wamid()
        record("delivered", wamid)
        to = payload.get("to")
        # A number is answered with its wa_id; a business-scoped user id with its user_id.
        contact = {"input": to, "wa_id": to} if to else {"input": _addressee(payload)}
        if not to:
            contact["user_id"] = _addressee(payload)
        self._answer(
            200,
            {"messaging_product": "whatsapp", "contacts": [contact], "messages": [{"id": wamid}]},
        )

    def _trace(self) -> str:
        return f"FAKE{random.getrandbits(40):x}"

    def _answer(self, status: int, body: dict[str, Any]) -> None:
        data = json.dumps(body).encode()
        reason = HTTPStatus(status).phrase
        head = (
            f"HTTP/1.1 {status} {reason}\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(data)}\r\n\r\n"
        ).encode()
        # One write for the whole answer: cheaper, and no small-packet delay to wait out. The
        # client may have given up already (an injected timeout): nothing to answer then.
        with contextlib.suppress(BrokenPipeError, ConnectionResetError):
            self.wfile.write(head + data)
