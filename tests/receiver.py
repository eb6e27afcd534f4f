"""A business's webhook receiver: a real threaded HTTP server on loopback that records every
POST (headers and exact body) and can be told to answer 500 a number of times first."""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass(frozen=True, slots=True)
class Delivery:
    headers: dict[str, str]
    body: bytes
    status: int  # what the receiver answered

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)


@dataclass
class Receiver:
    failures: int = 0  # answer this many requests with 500 before answering 204
    received: list[Delivery] = field(default_factory=list, init=False)

    def __post_init__(self) -> None:
        self._lock = threading.Condition()  # notified on every request recorded
        self._server: ThreadingHTTPServer | None = None

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, format: str, *args: Any) -> None:
                pass

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                with receiver._lock:
                    status = 500 if receiver.failures > 0 else 204
                    receiver.failures -= status == 500
                    headers = {k.lower(): v for k, v in self.headers.items()}
                    receiver.received.append(Delivery(headers, body, status))
                    receiver._lock.notify_all()
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        threading.Thread(target=self._server.serve_forever, args=(0.05,), daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()

    @property
    def url(self) -> str:
        assert self._server is not None
        return f"http://127.0.0.1:{self._server.server_port}/hooks/consent"

    def accepted(self) -> list[Delivery]:
        with self._lock:
            return [d for d in self.received if d.status < 300]

    def wait_for(self, count: int, timeout: float = 10.0) -> list[Delivery]:
        """Until count bodies were accepted (or timeout); those accepted."""
        with self._lock:
            self._lock.wait_for(lambda: len(self.accepted()) >= count, timeout)
        return self.accepted()
