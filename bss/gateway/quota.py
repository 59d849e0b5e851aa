"""Google's quotas, kept by every thread, process and host together: a limiter in Redis keyed by
(Cloud project, API).

Each key is a GCRA (generic cell rate algorithm, the token bucket written as one "theoretical
arrival time") run atomically in a Lua script, so that any number of workers on any number of
hosts share one schedule. Calls are spread evenly at the key's pace (Google's advice: spread load
rather than burst); a batch of n calls may go at once, and then holds the key for n intervals.
The pace is the limit times a headroom (0.95 by default), so that calls arriving at Google a
little early or late do not cross the limit.

Dramatiq's BucketRateLimiter and WindowRateLimiter answer only "yes" or "no": a job refused by
them cannot tell how long to wait, and we need that figure to give the thread back and come back
by a delayed message at the right time. Here `acquire` answers 0.0 (the calls are counted) or
the seconds to wait (nothing counted); `reserve` books a short wait (the thread sleeps it, first
come first served, without polling) and only answers a long one.

The limiter adapts: a rate-limit answer from Google (`slow_down`) lowers the key's pace: a lone
one by a tenth (at our headroom it most likely means calls that reached Google closer together
than they were sent), answers on each other's heels by half (the quota is lower than we were
told, or others use it too), never below a tenth of the limit, at most once a second (answers to
calls already in flight do not count twice); when Google said Retry-After, the key is held until
then. After a quiet period without rate-limit answers the pace rises again step by step to the
full limit.

Time comes from the clock passed in (a fake one in unit tests) or, by default, from Redis itself,
so that hosts whose clocks disagree still share one schedule. A short rolling count of calls per
key feeds `quota_usage`, which the dashboard and /metrics read.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any, NamedTuple

from bss.gateway import quota_scripts as lua
from bss.settings import Settings

log = logging.getLogger(__name__)

#: What a rate-limit answer does to a key's pace, and how the pace comes back.
LONE_SLOW_FACTOR = 0.9  # a lone answer trims the pace by a tenth...
LONE_AFTER_SECONDS = 5.0  # ...(lone: none came in the seconds before it)...
SLOW_FACTOR = 0.5  # ...answers on each other's heels halve it...
SLOW_FLOOR = 0.1  # ...down to a tenth of the limit at the lowest
SLOW_COOLDOWN_SECONDS = 1.0  # answers to calls already in flight do not halve it again
QUIET_SECONDS = 30.0  # this long without rate-limit answers, and the pace rises...
RECOVERY_STEP = 0.1  # ...by a tenth of the limit...
RECOVERY_STEP_SECONDS = 5.0  # ...every this many seconds, up to the full limit
#: A call taken up to this fraction of an interval late keeps the key's cadence (a thread wakes
#: a little after its slot; without this, each late wake-up would be quota lost).
LAG_TOLERANCE = 0.1
#: Seconds over which calls per second are counted for quota_usage.
USAGE_WINDOW_SECONDS = 10
#: A key unused this long is forgotten (its counters with it).
KEY_TTL_SECONDS = 3600
#: The share of a limit that calls are paced to, unless settings say otherwise.
DEFAULT_HEADROOM = 0.95


class QuotaKey(NamedTuple):
    """What a quota is kept for: a Cloud project and an API (reseller, admin, licensing, gmail)."""

    project: str
    api: str

    @property
    def member(self) -> str:
        return f"{self.project}|{self.api}"


@dataclass(frozen=True)
class QuotaUse:
    """One Cloud project's use of one API's quota, as operators see it."""

    project: str
    api: str
    limit_per_second: float  # the quota our calls are paced to (settings or the instance)
    effective_per_second: float  # the pace now: the limit less headroom, lower after slow-downs
    calls_per_second: float  # calls made, over the last USAGE_WINDOW_SECONDS
    rate_limited: int  # rate-limit answers from Google while the key was in use
    blocked_seconds: float  # left of a Retry-After Google gave
    slowed: bool  # rate-limit answers hold the pace below its usual one


class QuotaLimiter:
    """Paces calls per (Cloud project, API) across every process that shares the Redis `redis`.

    `clock` gives the time in seconds (None: Redis's own clock); `headroom` is the share of the
    limit that calls are paced to; `burst` is how many calls may go at once after a quiet spell
    (1: none, calls are spread evenly).
    """

    def __init__(
        self,
        redis: Any,
        *,
        clock: Callable[[], float] | None = None,
        headroom: float = DEFAULT_HEADROOM,
        burst: float = 1.0,
        prefix: str = "bss:quota",
    ) -> None:
        if not 0 < headroom <= 1:
            raise ValueError("headroom must be in (0, 1]")
        self.redis = redis
        self.clock = clock
        self.headroom = headroom
        self.burst = max(1.0, burst)
        self.prefix = prefix
        self._acquire = redis.register_script(lua.ACQUIRE)
        self._slow_down = redis.register_script(lua.SLOW_DOWN)
        self._book_return = redis.register_script(lua.BOOK_RETURN)
        self._usage = redis.register_script(lua.USAGE)

    def _now(self) -> float:
        return self.clock() if self.clock is not None else -1.0

    def _state(self, key: QuotaKey | tuple[str, str]) -> str:
        return f"{self.prefix}:{QuotaKey(*key).member}"

    @property
    def _index(self) -> str:
        return f"{self.prefix}:keys"

    def acquire(self, key: QuotaKey | tuple[str, str], per_second: float, n: int = 1) -> float:
        """0.0 when `n` calls may go now (they are counted), else the seconds to wait (nothing
        is counted). `per_second` is the key's limit. A batch of `n` calls goes at once when the
        key is free, and then holds it for `n` intervals."""
        return self.reserve(key, per_second, n, max_wait=0.0)

    def reserve(
        self, key: QuotaKey | tuple[str, str], per_second: float, n: int = 1, *, max_wait: float
    ) -> float:
        """The seconds until `n` calls may go. When that is at most `max_wait`, the calls are
        booked for then (counted: the caller sleeps that long and goes, and later callers queue
        behind it, first come first served); when longer, nothing is counted."""
        if per_second <= 0 or n < 1:
            raise ValueError("per_second must be positive and n at least 1")
        key = QuotaKey(*key)
        state = self._state(key)
        wait = self._acquire(
            keys=[state, f"{state}:calls", self._index],
            args=[
                self._now(),
                per_second,
                n,
                self.headroom,
                self.burst,
                LAG_TOLERANCE,
                key.member,
                KEY_TTL_SECONDS,
                USAGE_WINDOW_SECONDS,
                *_recovery(),
                min(max_wait, 1e9),  # "any wait" as a number Lua reads
            ],
        )
        return max(0.0, float(wait))

    def slow_down(self, key: QuotaKey | tuple[str, str], retry_after: float | None = None) -> float:
        """Google answered a call of `key` with a rate limit: lower its pace, and hold it for
        `retry_after` seconds when Google said so; returns the new share of the limit."""
        key = QuotaKey(*key)
        factor = self._slow_down(
            keys=[self._state(key), self._index],
            args=[
                self._now(),
                retry_after if retry_after and retry_after > 0 else -1,
                key.member,
                KEY_TTL_SECONDS,
                SLOW_FACTOR,
                SLOW_FLOOR,
                SLOW_COOLDOWN_SECONDS,
                *_recovery(),
                LONE_SLOW_FACTOR,
                LONE_AFTER_SECONDS,
            ],
        )
        return float(factor)

    def book_return(
        self, key: QuotaKey | tuple[str, str], per_second: float, n: int, at_least: float
    ) -> float:
        """A job gives its thread back to wait for `key`: the seconds until it should come back,
        at least `at_least`, each job one place (n calls) behind the one before, so that jobs
        come back at the pace the quota can serve rather than all at once."""
        return float(
            self._book_return(
                keys=[self._state(key)],
                args=[
                    self._now(),
                    per_second,
                    n,
                    self.headroom,
                    at_least,
                    KEY_TTL_SECONDS,
                    *_recovery(),
                ],
            )
        )

    def usage(self) -> list[QuotaUse]:
        """Every key used in the last hour: its limit, pace, calls per second, rate limits."""
        rows = self._usage(
            keys=[self._index],
            args=[
                self._now(),
                self.prefix,
                KEY_TTL_SECONDS,
                USAGE_WINDOW_SECONDS,
                *_recovery(),
            ],
        )
        out = []
        for raw in rows:
            member, limit, factor, limited, blocked, calls = (_text(v) for v in raw)
            project, _, api = member.rpartition("|")
            out.append(
                QuotaUse(
                    project=project,
                    api=api,
                    limit_per_second=float(limit),
                    effective_per_second=float(limit) * self.headroom * float(factor),
                    calls_per_second=int(calls) / USAGE_WINDOW_SECONDS,
                    rate_limited=int(limited),
                    blocked_seconds=float(blocked),
                    slowed=float(factor) < 1 or float(blocked) > 0,
                )
            )
        return sorted(out, key=lambda u: (u.project, u.api))


def _recovery() -> tuple[float, float, float]:
    return QUIET_SECONDS, RECOVERY_STEP, RECOVERY_STEP_SECONDS


def _text(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


@functools.cache
def _client(url: str) -> Any:
    import redis

    return redis.Redis.from_url(url, socket_timeout=5, socket_connect_timeout=5)


def redis_of(settings: Settings) -> Any:
    """The process's client of the Redis on REDIS_URL, or None when there is none."""
    return _client(settings.redis_url) if settings.redis_url else None


def quota_limiter_from_settings(settings: Settings) -> QuotaLimiter | None:
    """The shared limiter on REDIS_URL (None without Redis: calls are then not paced)."""
    client = redis_of(settings)
    if client is None:
        return None
    return QuotaLimiter(client, headroom=settings.quota_headroom)


def quota_usage(source: Settings | Any) -> list[QuotaUse]:
    """Per (Cloud project, API) in use: limit, pace, calls per second and rate-limit answers,
    read from the Redis of `source` (Settings or a Redis client). Empty when Redis cannot be
    read: the figures are for display, and their absence must not break a page."""
    import redis

    if isinstance(source, Settings):
        client = redis_of(source)
        headroom = source.quota_headroom
    else:
        client, headroom = source, DEFAULT_HEADROOM
    if client is None:
        return []
    try:
        return QuotaLimiter(client, headroom=headroom).usage()
    except redis.RedisError as exc:
        log.warning("quota use could not be read from Redis: %s", exc)
        return []
    finally:
        if isinstance(source, Settings):
            client.close()  # made here, for this one read
