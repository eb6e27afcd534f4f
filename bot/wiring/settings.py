"""Settings read from the environment once, at start-up, and checked before the app serves."""

from __future__ import annotations

import re
import secrets
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO
from urllib.parse import urlsplit

from bot.graph.client import DEFAULT_BASE_URL as DEFAULT_API_URL
from storage.kv import DEFAULT_PREFIX

DEFAULT_DATABASE_URL = "sqlite:///instance/optin.db"
CONSOLE_USERNAME = re.compile(r"[A-Za-z0-9._@-]{1,64}")
REDIS_PREFIX_SHAPE = re.compile(r"[A-Za-z0-9._:-]{1,64}")
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")


class SettingsError(RuntimeError):
    """The environment cannot run the app; the message says what to set."""


@dataclass(frozen=True, slots=True, kw_only=True)
class Settings:
    app_env: str = "production"
    verify_token: str
    app_secret: str = field(repr=False)
    secret_key: str = field(repr=False)
    access_token: str | None = field(default=None, repr=False)
    api_url: str = DEFAULT_API_URL
    phone_number_id: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    redis_prefix: str = DEFAULT_PREFIX  # every Redis key starts with it
    log_level: str = "INFO"
    optin_config: Path = Path("optin.toml")
    api_tokens: tuple[str, ...] = field(default=(), repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    send_rate_per_second: float = 80.0
    event_retention_days: int = 30  # raw status/other events and unparsable bodies
    mark_inbound_read: bool = True
    run_dispatcher: bool = True
    # Support console staff: (username, werkzeug password hash); empty disables the console.
    console_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    console_secure_cookies: bool = True
    # The business's receiver of consent changes (C29); None: no webhook is queued or sent.
    consent_webhook_url: str | None = None
    consent_webhook_secret: str | None = field(default=None, repr=False)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are believed.
    trusted_proxy_hops: int = 0
    generated: tuple[str, ...] = ()  # names of secrets generated for development

    @property
    def suppression_key(self) -> bytes:
        """Key of the suppression hashes; SECRET_KEY must stay stable for them to match."""
        return self.secret_key.encode()

    @classmethod
    def from_env(
        cls, env: Mapping[str, str], development_secrets: Mapping[str, str] | None = None
    ) -> Settings:
        """Settings from env; in development, missing secrets come from development_secrets
        (kept between runs so Meta's dashboard keeps working), else freshly generated."""

        def get(name: str) -> str | None:
            value = env.get(name, "").strip()
            return value or None

        app_env = get("APP_ENV") or "production"
        if app_env not in ("production", "development"):
            raise SettingsError(f"APP_ENV must be 'production' or 'development', not {app_env!r}")

        generated: list[str] = []
        missing: list[str] = []

        def secret(name: str) -> str:
            value = get(name)
            if value is not None:
                return value
            if app_env == "production":
                missing.append(name)
                return ""
            generated.append(name)
            kept = (development_secrets or {}).get(name)
            return kept or secrets.token_urlsafe(24)

        verify_token = secret("WHATSAPP_VERIFY_TOKEN")
        app_secret = secret("WHATSAPP_APP_SECRET")
        secret_key = secret("SECRET_KEY")
        if missing:
            raise SettingsError(
                "refusing to start in production without "
                + ", ".join(missing)
                + " (set them in the environment or .env; see .env.example)"
            )

        rate = _number(get("SEND_RATE_PER_SECOND") or "80", "SEND_RATE_PER_SECOND")
        if not 0 < rate <= 1000:
            raise SettingsError("SEND_RATE_PER_SECOND must be above 0 and at most 1000")

        retention = _number(get("EVENT_RETENTION_DAYS") or "30", "EVENT_RETENTION_DAYS")
        if retention != int(retention) or retention < 1:
            raise SettingsError("EVENT_RETENTION_DAYS must be a whole number of days, at least 1")

        redis_prefix = get("REDIS_PREFIX") or DEFAULT_PREFIX
        if not REDIS_PREFIX_SHAPE.fullmatch(redis_prefix):
            raise SettingsError(
                "REDIS_PREFIX must be 1 to 64 letters, digits and . _ : - (e.g. 'optin:')"
            )
        log_level = (get("LOG_LEVEL") or "INFO").upper()
        if log_level not in LOG_LEVELS:
            raise SettingsError(f"LOG_LEVEL must be one of {', '.join(LOG_LEVELS)}")

        webhook_url, webhook_secret = _consent_webhook(
            get("CONSENT_WEBHOOK_URL"), get("CONSENT_WEBHOOK_SECRET")
        )
        hops = _number(get("TRUSTED_PROXY_HOPS") or "0", "TRUSTED_PROXY_HOPS")
        if hops != int(hops) or not 0 <= hops <= 5:
            raise SettingsError("TRUSTED_PROXY_HOPS must be a whole number from 0 to 5")

        return cls(
            app_env=app_env,
            verify_token=verify_token,
            app_secret=app_secret,
            secret_key=secret_key,
            access_token=get("WHATSAPP_ACCESS_TOKEN"),
            api_url=(get("WHATSAPP_API_URL") or DEFAULT_API_URL).rstrip("/"),
            phone_number_id=get("WHATSAPP_PHONE_NUMBER_ID"),
            database_url=get("DATABASE_URL") or DEFAULT_DATABASE_URL,
            redis_url=get("REDIS_URL"),
            redis_prefix=redis_prefix,
            log_level=log_level,
            optin_config=Path(get("OPTIN_CONFIG") or "optin.toml"),
            api_tokens=tuple(t.strip() for t in (get("API_TOKENS") or "").split(",") if t.strip()),
            metrics_token=(get("METRICS_TOKEN") or "").strip() or None,
            send_rate_per_second=rate,
            event_retention_days=int(retention),
            mark_inbound_read=_flag(get("MARK_INBOUND_READ"), default=True),
            run_dispatcher=_flag(get("RUN_DISPATCHER"), default=True),
            console_users=_console_users(get("CONSOLE_USERS")),
            # Local development runs over plain http, where a Secure cookie would never be sent.
            console_secure_cookies=_flag(
                get("CONSOLE_SECURE_COOKIES"), default=app_env == "production"
            ),
            consent_webhook_url=webhook_url,
            consent_webhook_secret=webhook_secret,
            trusted_proxy_hops=int(hops),
            generated=tuple(generated),
        )

    def announce_generated(self, stream: TextIO | None = None) -> None:
        """Print development secrets once so a developer can paste them into Meta's dashboard."""
        for name in self.generated:
            value = {
                "WHATSAPP_VERIFY_TOKEN": self.verify_token,
                "WHATSAPP_APP_SECRET": self.app_secret,
                "SECRET_KEY": "a generated key (not shown)",
            }[name]
            print(f"development: {name} not set; using {value}", file=stream or sys.stderr)


WEBHOOK_SECRET_MIN = 16


def _consent_webhook(url: str | None, secret: str | None) -> tuple[str | None, str | None]:
    """The receiver's URL and the secret that signs every body; both, or neither."""
    if url is None:
        return None, None
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise SettingsError(
            "CONSENT_WEBHOOK_URL must be an http(s) URL, e.g. https://crm.example/hooks/consent"
        )
    if secret is None or len(secret) < WEBHOOK_SECRET_MIN:
        raise SettingsError(
            f"CONSENT_WEBHOOK_URL is set: CONSENT_WEBHOOK_SECRET must be at least "
            f"{WEBHOOK_SECRET_MIN} characters, so that the receiver can tell our bodies from "
            "forged ones (X-Signature-256)"
        )
    return url, secret


def _console_users(raw: str | None) -> tuple[tuple[str, str], ...]:
    """`username:hash,...`; werkzeug hashes contain ':' and '$', so split on the first ':'."""
    if raw is None:
        return ()
    users: list[tuple[str, str]] = []
    for position, entry in enumerate(raw.split(","), start=1):
        username, _, password_hash = entry.strip().partition(":")
        where = f"CONSOLE_USERS entry {position}"
        if not CONSOLE_USERNAME.fullmatch(username):
            raise SettingsError(
                f"{where}: expected username:password_hash with a username of letters, digits "
                "and . _ @ - (at most 64)"
            )
        if not _looks_like_password_hash(password_hash):
            raise SettingsError(
                f"{where} ({username}): the password hash is not werkzeug's "
                "generate_password_hash output; make one with `flask --app wsgi console "
                "hash-password`"
            )
        if any(known == username for known, _ in users):
            raise SettingsError(f"{where}: username {username!r} is listed twice")
        users.append((username, password_hash))
    return tuple(users)


def _looks_like_password_hash(value: str) -> bool:
    """werkzeug's format: method$salt$hash, the method being scrypt:... or pbkdf2:..."""
    parts = value.split("$")
    return len(parts) == 3 and parts[0].split(":")[0] in ("scrypt", "pbkdf2") and all(parts)


def _number(raw: str, name: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None


def _flag(raw: str | None, *, default: bool) -> bool:
    if raw is None:
        return default
    return raw.lower() in ("1", "true", "yes", "on")
