"""Where the tests find PostgreSQL and Redis, and what they do when a service is missing.

A test that needs a service fails when it cannot reach it under CI (CI=1); on a laptop without
the service it is skipped, and the skip says which service and where it was looked for.
"""

from __future__ import annotations

import os

import pytest

POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL_FOR_SERVICES", "redis://127.0.0.1:6379/0")


def unreachable(service: str, where: str, error: Exception) -> None:
    message = f"{service} not reachable at {where}: {error.__class__.__name__}: {error}"
    if os.environ.get("CI"):
        pytest.fail(message + " (CI must provide it; see .ci/run)")
    pytest.skip(message + " (start it to run this test; CI always does)")


def postgres_url_or_skip() -> str:
    import psycopg

    plain = POSTGRES_URL.replace("postgresql+psycopg://", "postgresql://")
    try:
        psycopg.connect(plain, connect_timeout=3).close()
    except psycopg.Error as exc:
        unreachable("PostgreSQL", POSTGRES_URL, exc)
    return POSTGRES_URL


def redis_url_or_skip() -> str:
    import redis

    url = os.environ.get("TEST_REDIS_URL") or REDIS_URL
    try:
        redis.Redis.from_url(url, socket_connect_timeout=2).ping()
    except redis.RedisError as exc:
        unreachable("Redis", url, exc)
    return url
