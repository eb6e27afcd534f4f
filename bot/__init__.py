"""The Flask app: create_app() wires settings, storage and the blueprints together."""

from __future__ import annotations

import logging
import os
from collections.abc import Mapping

from flask import Flask

MAX_WEBHOOK_BYTES = 3 * 1024 * 1024  # Meta's payloads are at most 3 MB

log = logging.getLogger(__name__)


def create_app(test_config: Mapping[str, str] | None = None) -> Flask:
    """Build the app from the environment (and .env), or from test_config in tests.

    Refuses to start, with a message naming the problem, when the settings or the
    OPTIN_CONFIG file are not usable.
    """
    from dotenv import load_dotenv

    from bot.logsetup import configure_logging
    from bot.optin_file import load_catalog
    from bot.services import Services
    from bot.settings import Settings
    from storage.db import make_engine
    from storage.kv import MemoryStore, RedisStore

    if test_config is None:
        load_dotenv(os.path.join(os.getcwd(), ".env"), override=False)
        env: Mapping[str, str] = os.environ
    else:
        env = test_config
    settings = Settings.from_env(env)
    configure_logging()
    settings.announce_generated()
    catalog = load_catalog(settings.optin_config)

    if settings.redis_url:
        store = RedisStore.from_url(settings.redis_url, prefix=env.get("REDIS_PREFIX", "optin:"))
    else:
        log.warning("REDIS_URL is not set: using an in-process store, correct for one process only")
        store = MemoryStore()

    app = Flask(__name__, instance_relative_config=True)
    app.config.update(
        SECRET_KEY=settings.secret_key,
        MAX_CONTENT_LENGTH=MAX_WEBHOOK_BYTES,
        JSON_SORT_KEYS=False,
        TESTING=test_config is not None,
    )
    Services(
        settings=settings,
        catalog=catalog,
        engine=make_engine(settings.database_url),
        store=store,
    ).init_app(app)

    from bot import api, cli, health, webhook

    webhook.init_app(app)
    api.init_app(app)
    health.init_app(app)
    cli.init_app(app)
    return app
