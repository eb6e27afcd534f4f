"""The outbound send rate, shared by every dispatcher: a token bucket in Redis, or in-process.

acquire() reserves a slot and says how long to wait for it, so callers sleep outside any lock
and slots are handed out in order. The bucket may go negative: that is the queue of reservations.
"""

from __future__ import annotations

import threading
import time
from typing import Protocol

import redis

# KEYS[1]: bucket hash. ARGV: rate per second, burst, seconds of penalty (0: acquire one slot).
# Redis's own clock keeps every process on one timeline.
_ACQUIRE = """
local rate = tonumber(ARGV[1])
local burst = tonumber(ARGV[2])
local penalty = tonumber(ARGV[3])
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
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

    def acquire(self) -> float:
        """Reserve one send; the seconds to wait before making it."""

    def penalise(self, seconds: float) -> None:
        """Meta said slow down: hold every sender back for this long."""


def burst_for(rate: float) -> float:
    # A tenth of a second's worth: smooth enough to hold the rate within a few percent.
    return max(1.0, rate / 10)


class RedisRateLimiter:
    def __init__(self, connection: redis.Redis, key: str, rate: float) -> None:
        self.connection = connection
        self.key = key
        self.rate = rate
        self._script = connection.register_script(_ACQUIRE)

    def acquire(self) -> float:
        return float(self._script(keys=[self.key], args=[self.rate, burst_for(self.rate), 0]))

    def penalise(self, seconds: float) -> None:
        self._script(keys=[self.key], args=[self.rate, burst_for(self.rate), seconds])


class MemoryRateLimiter:
    """Correct for one process; each process without Redis has its own rate."""

    def __init__(self, rate: float, clock=time.monotonic) -> None:  # type: ignore[no-untyped-def]
        self.rate = rate
        self._burst = burst_for(rate)
        self._tokens = self._burst
        self._clock = clock
        self._stamp = clock()
        self._lock = threading.Lock()

    def _refill(self) -> None:
        now = self._clock()
        self._tokens = min(self._burst, self._tokens + (now - self._stamp) * self.rate)
        self._stamp = now

    def acquire(self) -> float:
        with self._lock:
            self._refill()
            self._tokens -= 1
            return max(0.0, -self._tokens / self.rate)

    def penalise(self, seconds: float) -> None:
        with self._lock:
            self._refill()
            # As in Redis: the next slot at least this far away, not one pause per caller.
            self._tokens = min(self._tokens, -seconds * self.rate)
