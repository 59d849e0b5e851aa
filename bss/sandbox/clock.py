"""The sandbox's clock: real time plus an offset that tests move forward.

The offset ages everything the sandbox itself issued (codes, access and refresh tokens,
trials, transfer tokens). Timestamps inside JWTs use the real clock, because clients check
them against their own clock.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime


class Clock:
    """Wall-clock time shifted by an offset in seconds."""

    def __init__(self, offset: float = 0.0) -> None:
        self.offset = offset

    def now(self) -> float:
        """Seconds since the epoch, as the sandbox sees it."""
        return time.time() + self.offset

    def now_ms(self) -> int:
        """Milliseconds since the epoch, as the sandbox sees it."""
        return int(self.now() * 1000)

    def advance(self, seconds: float) -> float:
        """Move the sandbox's time forward (never backward) and return the new now."""
        if seconds < 0:
            raise ValueError("the sandbox clock only moves forward")
        self.offset += seconds
        return self.now()


def rfc3339(ts: float) -> str:
    """Format epoch seconds the way Google's JSON APIs do: 2024-01-02T03:04:05.678Z."""
    dt = datetime.fromtimestamp(ts, tz=UTC)
    return dt.strftime("%Y-%m-%dT%H:%M:%S.") + f"{dt.microsecond // 1000:03d}Z"
