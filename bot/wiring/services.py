"""The app's long-lived collaborators, built once by create_app and passed to whoever needs them."""

from __future__ import annotations

import atexit
import logging
import threading
from dataclasses import dataclass, field

from flask import Flask, current_app
from sqlalchemy.engine import Engine

from bot.graph.client import Transport
from bot.wiring.settings import Settings
from flows.catalog import Catalog
from storage.kv import KeyValueStore
from storage.ratelimit import RateLimiter

EXTENSION_KEY = "optin"
log = logging.getLogger(__name__)


@dataclass(slots=True, kw_only=True)
class Services:
    settings: Settings
    catalog: Catalog
    engine: Engine
    store: KeyValueStore
    transport: Transport
    limiter: RateLimiter
    outbox_wake: threading.Event = field(default_factory=threading.Event)
    _stop: threading.Event = field(default_factory=threading.Event)
    _thread: threading.Thread | None = None
    _webhook_thread: threading.Thread | None = None

    def init_app(self, app: Flask) -> None:
        app.extensions[EXTENSION_KEY] = self

    def redis_problem(self) -> str | None:
        """Why the configured Redis does not answer; None when it does or none is configured."""
        if not self.settings.redis_url:
            return None
        try:
            self.store.ping()
        except Exception as exc:  # any failure is reported, never raised: Redis is a speed-up
            return f"unavailable: {exc.__class__.__name__}"
        return None

    def dispatcher(self, **overrides):  # type: ignore[no-untyped-def]
        from bot.outbound.loop import Dispatcher

        options = {
            "engine": self.engine,
            "transport": self.transport,
            "limiter": self.limiter,
            "catalog": self.catalog,
            "suppression_key": self.settings.suppression_key,
            "token": self.settings.access_token,
        }
        options.update(overrides)
        return Dispatcher(**options)

    def webhook_sender(self, **overrides):  # type: ignore[no-untyped-def]
        """The consent webhooks' sender, or None when CONSENT_WEBHOOK_URL is not set."""
        from bot.webhooks.sender import WebhookSender

        url, secret = self.settings.consent_webhook_url, self.settings.consent_webhook_secret
        if url is None or secret is None:
            return None
        return WebhookSender(engine=self.engine, url=url, secret=secret, **overrides)

    def start_webhook_thread(self, stop: threading.Event | None = None) -> threading.Thread | None:
        """Deliver consent webhooks in the background, when a receiver is configured."""
        sender = self.webhook_sender()
        if sender is None:
            return None
        thread = threading.Thread(
            target=sender.run, args=(stop or self._stop,), name="consent-webhooks", daemon=True
        )
        thread.start()
        return thread

    def start_dispatcher_thread(self, **overrides):  # type: ignore[no-untyped-def]
        """Send in the background of the web process, so `make run` needs nothing else.

        The dispatcher started (overrides as for dispatcher()), or None if one already runs.
        """
        if self._thread is not None:
            return None
        self._webhook_thread = self.start_webhook_thread()
        dispatcher = self.dispatcher(**overrides)
        self._thread = threading.Thread(
            target=dispatcher.run,
            args=(self._stop, self.outbox_wake),
            name="outbox-dispatcher",
            daemon=True,
        )
        self._thread.start()
        atexit.register(self.stop_dispatcher_thread)
        return dispatcher

    def stop_dispatcher_thread(self, timeout: float = 10.0) -> None:
        """Finish the rows in hand and give back the rest."""
        if self._thread is None:
            return
        self._stop.set()
        self.outbox_wake.set()
        self._thread.join(timeout)
        self._thread = None
        if self._webhook_thread is not None:
            self._webhook_thread.join(timeout)
            self._webhook_thread = None


def services(app: Flask | None = None) -> Services:
    return (app or current_app).extensions[EXTENSION_KEY]
