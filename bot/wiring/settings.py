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
from bot.wiring.accounts import ApiToken, parse_api_tokens, parse_console_users
from bot.wiring.keys import GENERATE_HINT, weak_key_problem
from storage.kv import DEFAULT_PREFIX

DEFAULT_DATABASE_URL = "sqlite:///instance/optin.db"
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
    api_tokens: tuple[ApiToken, ...] = field(default=(), repr=False)
    metrics_token: str | None = field(default=None, repr=False)
    send_rate_per_second: float = 80.0
    event_retention_days: int = 30  # raw status/other events and unparsable bodies
    mark_inbound_read: bool = True
    run_dispatcher: bool = True
    # Support console staff: (username, werkzeug password hash); empty disables the console.
    console_users: tuple[tuple[str, str], ...] = field(default=(), repr=False)
    console_admins: frozenset[str] = frozenset()  # the others are support staff
    console_secure_cookies: bool = True
    console_idle_minutes: int = 8 * 60  # a console session unused this long ends
    console_session_hours: int = 12  # and every session ends this long after sign-in
    # Set once SECRET_KEY has to change: the suppression hashes were made with the old key.
    suppression_secret: str | None = field(default=None, repr=False)
    # The business's receiver of consent changes (C29); None: no webhook is queued or sent.
    consent_webhook_url: str | None = None
    consent_webhook_secret: str | None = field(default=None, repr=False)
    # Reverse proxies in front of the app whose X-Forwarded-For/-Proto/-Host are believed.
    trusted_proxy_hops: int = 0
    generated: tuple[str, ...] = ()  # names of secrets generated for development

    @property
    def suppression_key(self) -> bytes:
        """Key of the suppression hashes: SUPPRESSION_KEY, else SECRET_KEY as it always was,
        so that hashes made before SUPPRESSION_KEY existed keep matching."""
        return (self.suppression_secret or self.secret_key).encode()

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
        suppression_secret = get("SUPPRESSION_KEY")
        if app_env == "production":
            _refuse_weak_secret_key(secret_key, suppression_key_set=suppression_secret is not None)

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
        try:
            accounts = parse_console_users(get("CONSOLE_USERS"))
            api_tokens = parse_api_tokens(get("API_TOKENS"))
        except ValueError as exc:
            raise SettingsError(str(exc)) from None

        webhook_url, webhook_secret = _consent_webhook(
            get("CONSENT_WEBHOOK_URL"), get("CONSENT_WEBHOOK_SECRET")
        )

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
            api_tokens=api_tokens,
            metrics_token=(get("METRICS_TOKEN") or "").strip() or None,
            send_rate_per_second=rate,
            event_retention_days=int(retention),
            mark_inbound_read=_flag(get("MARK_INBOUND_READ"), default=True),
            run_dispatcher=_flag(get("RUN_DISPATCHER"), default=True),
            console_users=accounts.users,
            console_admins=accounts.admins,
            # Local development runs over plain http, where a Secure cookie would never be sent.
            console_secure_cookies=_flag(
                get("CONSOLE_SECURE_COOKIES"), default=app_env == "production"
            ),
            console_idle_minutes=_whole(get("CONSOLE_IDLE_MINUTES"), "CONSOLE_IDLE_MINUTES", 480),
            console_session_hours=_whole(get("CONSOLE_SESSION_HOURS"), "CONSOLE_SESSION_HOURS", 12),
            suppression_secret=suppression_secret,
            trusted_proxy_hops=_whole(
                get("TRUSTED_PROXY_HOPS"), "TRUSTED_PROXY_HOPS", 0, minimum=0, maximum=5
            ),
            consent_webhook_url=webhook_url,
            consent_webhook_secret=webhook_secret,
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


def _refuse_weak_secret_key(secret_key: str, *, suppression_key_set: bool) -> None:
    problem = weak_key_problem(secret_key)
    if problem is None:
        return
    keep = (
        ""
        if suppression_key_set
        else " SECRET_KEY has also keyed the suppression hashes so far: to keep existing "
        "suppressions, first set SUPPRESSION_KEY to the current SECRET_KEY, then change it."
    )
    raise SettingsError(
        f"refusing to start in production: SECRET_KEY {problem}. Set it to a long random "
        f"value, e.g. from {GENERATE_HINT}.{keep}"
    )


def _whole(
    raw: str | None, name: str, default: int, *, minimum: int = 1, maximum: int | None = None
) -> int:
    if raw is None:
        return default
    if not raw.isdigit() or int(raw) < minimum or (maximum is not None and int(raw) > maximum):
        most = f" and at most {maximum}" if maximum is not None else ""
        raise SettingsError(f"{name} must be a whole number, at least {minimum}{most}")
    return int(raw)


def _number(raw: str, name: str) -> float:
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"{name} must be a number, not {raw!r}") from None


def _flag(raw: str | None, *, default: bool) -> bool:
    if raw is None:
        return default
    return raw.lower() in ("1", "true", "yes", "on")
