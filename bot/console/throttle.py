"""Sign-in throttling that guessers cannot turn against staff.

Failures are counted per (username, client address) and per client address, never per username
alone: someone guessing from elsewhere slows only their own address, and a staff member at an
address that has not failed always gets in with the right password. The counts live in the
shared key-value store (Redis when configured), so every worker sees the same ones.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import redis

from storage.kv import KeyValueStore

log = logging.getLogger("bot.console")

USERNAME = "username"
ADDRESS = "address"


@dataclass(frozen=True, slots=True)
class Refusal:
    seconds: float  # until the window that began with the first failure ends
    reason: str  # USERNAME: this username from this address; ADDRESS: any from this address
    first: bool  # the first refusal of this window: worth a record; the rest repeat it


@dataclass(frozen=True, slots=True)
class SignInThrottle:
    store: KeyValueStore
    window_seconds: float
    per_username: int  # failures allowed per (username, address) in a window
    per_address: int  # failures allowed per address, whatever the usernames

    def refusal(self, username: str, address: str) -> Refusal | None:
        """Why this attempt is refused before its password is checked; None: go ahead."""
        try:
            for key, allowed, reason in (
                (self._address_key(address), self.per_address, ADDRESS),
                (self._pair_key(username, address), self.per_username, USERNAME),
            ):
                failures, left = self.store.counter(key)
                if failures >= allowed:
                    first = self.store.add(f"{key}:refused", max(left, 1.0))
                    return Refusal(seconds=left, reason=reason, first=first)
        except redis.RedisError as exc:
            # Staff must still be able to sign in while Redis is away; the hash stays slow.
            log.error("console sign-in throttle unavailable (%s)", type(exc).__name__)
        return None

    def failed(self, username: str, address: str) -> None:
        try:
            self.store.incr(self._pair_key(username, address), self.window_seconds)
            self.store.incr(self._address_key(address), self.window_seconds)
        except redis.RedisError as exc:
            log.error("console sign-in throttle unavailable (%s)", type(exc).__name__)

    def succeeded(self, username: str, address: str) -> None:
        """The right password from here: this username starts its count again. The address's
        count stands, so one good account cannot wipe out the failures of a username spray."""
        try:
            self.store.delete(self._pair_key(username, address))
        except redis.RedisError as exc:
            log.error("console sign-in throttle unavailable (%s)", type(exc).__name__)

    @staticmethod
    def _pair_key(username: str, address: str) -> str:
        return f"console-login-failures:{username.casefold()}:{address}"

    @staticmethod
    def _address_key(address: str) -> str:
        return f"console-login-failures-from:{address}"
