"""The Flask app: create_app() wires settings, storage and the blueprints together."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping
from pathlib import Path

from flask import Flask

MAX_WEBHOOK_BYTES = 3 * 1024 * 1024  # Meta's payloads are at most 3 MB

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (and .env), or from test_config in tests.

    Refuses to start, with a message naming the problem, when the settings or the
    OPTIN_CONFIG file are not usable.
    """
    from dotenv import load_dotenv

    from bot.wiring.logsetup import configure_logging
    from bot.wiring.optin_file import load_catalog
    from bot.wiring.services import Services
    from bot.wiring.settings import Settings
    from storage import consent_webhooks
    from storage.db import make_engine
    from storage.kv import MemoryStore, RedisStore
    from storage.ratelimit import MemoryRateLimiter, RedisRateLimiter, SharedRateLimiter

    if test_config is None:
        load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
        env: Mapping[str, str] = os.environ
    else:
        env = test_config
    kept = None
    if test_config is None and env.get("APP_ENV", "").strip() == "development":
        from bot.wiring.devsecrets import development_secrets

        kept = development_secrets(Path("instance") / "development-secrets.json")
    settings = Settings.from_env(env, development_secrets=kept)
    configure_logging(settings.log_level)
    settings.announce_generated()
    catalog = load_catalog(settings.optin_config)

    prefix = settings.redis_prefix
    if settings.redis_url:
        redis_store = RedisStore.from_url(settings.redis_url, prefix=prefix)
        store = redis_store
        limiter = SharedRateLimiter(
            RedisRateLimiter(
                redis_store.connection, prefix + "send-rate", settings.send_rate_per_second
            ),
            MemoryRateLimiter(settings.send_rate_per_second),
        )
    else:
        log.warning("REDIS_URL is not set: using an in-process store, correct for one process only")
        store = MemoryStore(prefix)
        limiter = MemoryRateLimiter(settings.send_rate_per_second)

    app = Flask(__name__, instance_relative_config=True)
    if settings.trusted_proxy_hops:
        from werkzeug.middleware.proxy_fix import ProxyFix

        # Behind the business's own domain: the client's address (abuse limits) and scheme.
        hops = settings.trusted_proxy_hops
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=hops, x_proto=hops, x_host=hops)  # type: ignore[method-assign]
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_WEBHOOK_BYTES,
        JSON_SORT_KEYS=False,
        TESTING=test_config is not None,
    )
    engine = make_engine(settings.database_url)
    if settings.consent_webhook_url:
        consent_webhooks.enable(engine)
    app_services = Services(
        settings=settings,
        catalog=catalog,
        engine=engine,
        store=store,
        transport=make_transport(settings),
        limiter=limiter,
    )
    app_services.init_app(app)

    from bot import api, cli, console, web
    from bot.inbound import webhook
    from bot.ops import health, metrics

    webhook.init_app(app)
    api.init_app(app)
    health.init_app(app)
    metrics.init_app(app)
    console.init_app(app)
    web.init_app(app)
    cli.init_app(app)
    if settings.run_dispatcher and test_config is None and not _running_cli_command():
        app_services.start_dispatcher_thread()
    return app


def make_transport(settings):  # type: ignore[no-untyped-def]
    """The Graph API with a token; without one, the console: printed, never sent."""
    from bot.graph import ConsoleTransport, GraphClient
    from bot.graph.http import PooledHTTP

    if settings.access_token:
        # As many pooled connections as `outbox work --concurrency` allows threads.
        http = PooledHTTP(settings.api_url, pool_size=64)
        return GraphClient(http, access_token=settings.access_token, base_url=settings.api_url)
    log.warning("WHATSAPP_ACCESS_TOKEN is not set: messages are printed, not sent")
    return ConsoleTransport()


def _running_cli_command() -> bool:
    """`flask db upgrade` and friends must not start sending in the background."""
    import sys

    return os.path.basename(sys.argv[0]) == "flask"
