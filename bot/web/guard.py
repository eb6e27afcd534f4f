"""What keeps the hosted page from being abused: a signed, single-use form token (it needs no
cookie, so the page also works inside a frame on the business's site), a keyed hash of the
client's address, and limits per address and per number in the shared key-value store."""

from __future__ import annotations

import hashlib
import hmac
import logging
import secrets
from dataclasses import dataclass

import redis
from itsdangerous import BadSignature, SignatureExpired, URLSafeTimedSerializer

from storage.kv import KeyValueStore

log = logging.getLogger(__name__)

TOKEN_MAX_AGE = 2 * 60 * 60  # seconds a page may stay open before its form expires
POSTS_PER_ADDRESS = 10  # form posts from one client address per hour
SUBMISSIONS_PER_NUMBER = 3  # accepted submissions for one number per day
HOUR, DAY = 60 * 60, 24 * 60 * 60


class TokenProblem(Exception):
    """The form's csrf_token is missing, forged, expired or used already."""


@dataclass(frozen=True, slots=True)
class Guard:
    secret_key: str
    store: KeyValueStore

    def _serializer(self) -> URLSafeTimedSerializer:
        return URLSafeTimedSerializer(self.secret_key, salt="optin-page-form")

    def new_token(self) -> str:
        return self._serializer().dumps(secrets.token_urlsafe(16))

    def spend_token(self, token: str | None) -> None:
        """Accept a token once; raises TokenProblem otherwise."""
        if not token:
            raise TokenProblem("missing")
        try:
            nonce = self._serializer().loads(token, max_age=TOKEN_MAX_AGE)
        except SignatureExpired:
            raise TokenProblem("expired") from None
        except BadSignature:
            raise TokenProblem("forged") from None
        if not self._once(f"optin-page:token:{nonce}", TOKEN_MAX_AGE):
            raise TokenProblem("used")

    def client_hash(self, address: str | None) -> str:
        """A keyed hash of the client's address: evidence and a limit key, never the address."""
        digest = hmac.new(
            self.secret_key.encode(), b"client-address:" + (address or "").encode(), hashlib.sha256
        )
        return digest.hexdigest()[:32]

    def address_over_limit(self, client: str) -> bool:
        return self._count(f"optin-page:address:{client}", HOUR) > POSTS_PER_ADDRESS

    def number_over_limit(self, wa_id: str) -> bool:
        key = hmac.new(self.secret_key.encode(), b"number:" + wa_id.encode(), hashlib.sha256)
        return self._count(f"optin-page:number:{key.hexdigest()[:32]}", DAY) > (
            SUBMISSIONS_PER_NUMBER
        )

    def _once(self, key: str, ttl: float) -> bool:
        try:
            return self.store.add(key, ttl)
        except redis.RedisError as exc:
            # The signature and its age still hold; only the replay check waits for Redis.
            log.error("opt-in page token store unavailable (%s)", type(exc).__name__)
            return True

    def _count(self, key: str, ttl: float) -> int:
        try:
            return self.store.incr(key, ttl)
        except redis.RedisError as exc:
            # The database still allows one template a day per number.
            log.error("opt-in page limits unavailable (%s)", type(exc).__name__)
            return 0
