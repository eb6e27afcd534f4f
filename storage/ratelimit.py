"""The outbound send rate, shared by every dispatcher: a token bucket in Redis, or in-process,
and Meta's per-recipient pacing after a 131056.

acquire() reserves a slot and says how long to wait for it, so callers sleep outside any lock
and slots are handed out in order. The bucket may go negative: that is the queue of reservations.
A recipient Meta asked to pace gets no slot: one call answers both, one Redis round trip a send.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any, Protocol

import redis

log = logging.getLogger(__name__)

# KEYS[1]: bucket hash; KEYS[2], if given: the recipient's pace key (while it exists, no slot).
# ARGV: rate per second, burst, seconds of penalty (0: acquire one slot), and optionally the time
# in seconds. Returns the seconds to wait, or -1 for a paced recipient. Redis's own clock keeps
# every process on one timeline; a time given instead is for tests, which move it themselves.
_ACQUIRE = """
if KEYS[2] and redis.call('EXISTS', KEYS[2]) == 1 then return '-1' end
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local penalty = tonumber(ARGV[3])
local now = tonumber(ARGV[4])
if now == nil then
  local t = redis.call('TIME')
  now = tonumber(t[1]) + tonumber(t[2]) / 1000000
end
local data = redis.call('HMGET', KEYS[1], 'tokens', 'ts')
local tokens = tonumber(data[1])
local ts = tonumber(data[2])
if tokens == nil then tokens = burst; ts = now end
tokens = math.min(burst, tokens + (now - ts) * rate)
local wait = 0
if penalty > 0 then
  -- Hold the next slot at least penalty seconds away. Not cumulative: the requests in flight
  -- when Meta says "slow down" all hear it at once, and one pause is what was asked for.
  tokens = math.min(tokens, -penalty * rate)
else
  tokens = tokens - 1
  if tokens < 0 then wait = -tokens / rate end
end
redis.call('HSET', KEYS[1], 'tokens', tostring(tokens), 'ts', tostring(now))
redis.call('EXPIRE', KEYS[1], 3600)
return tostring(wait)
"""


class RateLimiter(Protocol):
    rate: float

    def acquire(self, recipient: str | None = None) -> float | None:
        """Reserve one send; the seconds to wait before making it, or None while Meta paces
        this recipient (no slot is taken then)."""

    def penalise(self, seconds: float) -> None:
        """Meta said slow down: hold every sender back for this long."""

    def pace(self, recipient: str, seconds: float) -> None:
        """Meta's 131056 (pair rate limit): nothing to this recipient for this long."""

    def share_among(self, dispatchers: int) -> None:
        """This many dispatchers are sending now (their heartbeats say so); a limit kept by each
        process alone gives each its share of the rate."""


# While Redis does not answer, how long the send rate goes without asking it again.
REDIS_RETRY_SECONDS = 1.0


def burst_for(rate: float) -> float:
    # A tenth of a second's worth: smooth enough to hold the rate within a few percent.
    return max(1.0, rate / 10)


class RedisRateLimiter:
    def __init__(
        self,
        connection: redis.Redis,
        key: str,
        rate: float,
        clock: Callable[[], float] | None = None,
    ) -> None:
        self.connection = connection
        self.key = key
        self.rate = rate
        # None: Redis's clock, the one every process shares. Tests pass a clock they move, so
        # that the bucket's arithmetic is checked exactly (pace keys still expire on Redis's).
        self.clock = clock
        self._script = connection.register_script(_ACQUIRE)
        # Each sending thread asks on a connection of its own, straight through the protocol:
        # redis-py's pool checkout, its readiness poll and its retry wrapper cost twice the
        # round trip itself, once per message.
        self._own = threading.local()

    def _pace_key(self, recipient: str) -> str:
        return f"{self.key}:pace:{recipient}"

    def _args(self, penalty: float) -> list[float]:
        args = [self.rate, burst_for(self.rate), penalty]
        return args if self.clock is None else [*args, self.clock()]

    def acquire(self, recipient: str | None = None) -> float | None:
        keys = [self.key, self._pace_key(recipient)] if recipient else [self.key]
        wait = float(self._evaluate(keys, self._args(0)))
        return None if wait < 0 else wait

    def _evaluate(self, keys: list[str], args: list[float]) -> bytes:
        """The script on this thread's own connection; loaded again if Redis forgot it."""
        connection = getattr(self._own, "connection", None)
        fresh = connection is None
        if connection is None:
            pool = self.connection.connection_pool
            connection = self._own.connection = pool.connection_class(**pool.connection_kwargs)
        try:
            try:
                return self._run(connection, keys, args)
            except redis.exceptions.ConnectionError:
                if fresh:
                    raise
                # A connection an outage broke while this thread was idle: one new try on a
                # new connection, as redis-py's pool would, before the bucket falls back.
                connection.disconnect()
                return self._run(connection, keys, args)
        except BaseException:
            connection.disconnect()  # whatever was half said, the next call starts afresh
            raise

    def _run(self, connection: Any, keys: list[str], args: list[float]) -> bytes:
        try:
            connection.send_command("EVALSHA", self._script.sha, len(keys), *keys, *args)
            return connection.read_response()
        except redis.exceptions.NoScriptError:  # Redis restarted, or its scripts flushed
            connection.send_command("EVAL", _ACQUIRE, len(keys), *keys, *args)
            return connection.read_response()

    def penalise(self, seconds: float) -> None:
        self._script(keys=[self.key], args=self._args(seconds))

    def pace(self, recipient: str, seconds: float) -> None:
        self.connection.set(self._pace_key(recipient), b"1", px=max(1, int(seconds * 1000)))

    def share_among(self, dispatchers: int) -> None:
        pass  # one bucket for every process already


class MemoryRateLimiter:
    """Correct for one process; each process without Redis has its own rate.

    Without REDIS_URL the deployment is one process (start-up warns of it), so the heartbeats'
    count changes nothing here; :class:`SharedRateLimiter` divides its own fallback bucket.
    """

    def __init__(self, rate: float, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.rate = rate
        self._burst = burst_for(rate)
        self._tokens = self._burst
        self._clock = clock
        self._stamp = clock()
        self._lock = threading.Lock()
        self._paced_until: dict[str, float] = {}

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self, recipient: str | None = None) -> float | None:
        with self._lock:
            if recipient is not None and recipient in self._paced_until:
                if self._paced_until[recipient] > self._clock():
                    return None
                del self._paced_until[recipient]
            self._refill()
            self._tokens -= 1
            return max(0.0, -self._tokens / self.rate)

    def penalise(self, seconds: float) -> None:
        with self._lock:
            self._refill()
            # As in Redis: the next slot at least this far away, not one pause per caller.
            self._tokens = min(self._tokens, -seconds * self.rate)

    def pace(self, recipient: str, seconds: float) -> None:
        with self._lock:
            now = self._clock()
            # Forget the pauses that are over, so the map stays as small as the paced set.
            self._paced_until = {r: t for r, t in self._paced_until.items() if t > now}
            self._paced_until[recipient] = now + seconds

    def share_among(self, dispatchers: int) -> None:
        pass

    def set_rate(self, rate: float) -> None:
        """From now on, this many sends a second; slots already reserved keep their times."""
        with self._lock:
            self._refill()
            self.rate = rate
            self._burst = burst_for(rate)
            self._tokens = min(self._tokens, self._burst)


class SharedRateLimiter:
    """The Redis bucket, and while Redis does not answer, this process's own bucket.

    Sending must not stop with Redis: replies and STOP confirmations are owed now. The own bucket
    runs at the configured rate divided among the dispatchers running (share_among, from their
    heartbeats in the database), so the fleet stays within the rate without Redis. A dispatcher
    that starts during the outage is counted within a heartbeat; until then Meta's throughput
    errors slow every sender through penalise(). After a failure Redis is asked again only
    every REDIS_RETRY_SECONDS, so a Redis that hangs rather than refuses costs one timeout a
    period, not one per send; once it answers, the backlog drains at the full shared rate.
    """

    def __init__(
        self,
        shared: RedisRateLimiter,
        local: MemoryRateLimiter,
        clock=time.monotonic,  # type: ignore[no-untyped-def]
    ) -> None:
        self.shared = shared
        self.local = local
        self.rate = shared.rate
        self.dispatchers = 1
        self._clock = clock
        self._degraded = False
        self._retry_at = 0.0

    def share_among(self, dispatchers: int) -> None:
        dispatchers = max(1, dispatchers)
        if dispatchers != self.dispatchers:
            self.dispatchers = dispatchers
            self.local.set_rate(self.rate / dispatchers)
            if self._degraded:
                log.info("pacing this process at 1/%d of the send rate", dispatchers)

    def _shared_answers(self) -> bool:
        """Whether to ask Redis now: always while it answers, else once its pause is over."""
        return not self._degraded or self._clock() >= self._retry_at

    def _fallback(self, exc: redis.RedisError) -> None:
        if not self._degraded:
            log.warning(
                "send rate store unavailable, pacing this process at 1/%d of the rate: %s",
                self.dispatchers,
                exc,
            )
        self._degraded = True
        self._retry_at = self._clock() + REDIS_RETRY_SECONDS

    def _recovered(self) -> None:
        if self._degraded:
            log.info("send rate store answers again: pacing shared by every process")
        self._degraded = False

    def acquire(self, recipient: str | None = None) -> float | None:
        if not self._shared_answers():
            return self.local.acquire(recipient)
        try:
            wait = self.shared.acquire(recipient)
        except redis.RedisError as exc:
            self._fallback(exc)
            return self.local.acquire(recipient)
        self._recovered()
        return wait

    def penalise(self, seconds: float) -> None:
        self.local.penalise(seconds)
        if not self._shared_answers():
            return
        try:
            self.shared.penalise(seconds)
        except redis.RedisError as exc:
            self._fallback(exc)

    def pace(self, recipient: str, seconds: float) -> None:
        self.local.pace(recipient, seconds)
        if not self._shared_answers():
            return
        try:
            self.shared.pace(recipient, seconds)
        except redis.RedisError as exc:
            self._fallback(exc)
