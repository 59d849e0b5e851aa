"""Google calls made outside a job (registration, pulls, reconciliation): the instance's
Gateway with the shared token cache and its Cloud project's pacing (`bss.gateway`'s
`instance_gateway`), waiting for quota here, and a count of the calls."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from bss.errors import QuotaWait
from bss.gateway import CallRecord, Gateway

# A wait for quota longer than this is given up (the next reconciliation tries again).
MAX_QUOTA_WAIT_SECONDS = 120.0


@dataclass
class CallCounter:
    """Every Google call attempt made, by method (what `bss reconcile` and the bench print)."""

    calls: list[CallRecord] = field(default_factory=list)

    def __call__(self, call: CallRecord) -> None:
        self.calls.append(call)

    @property
    def total(self) -> int:
        return len(self.calls)

    def by_method(self) -> dict[str, int]:
        counts: dict[str, int] = {}
        for call in self.calls:
            counts[call.method] = counts.get(call.method, 0) + 1
        return counts


def call_waiting_for_quota(
    gateway: Gateway,
    method: str,
    request_of: Callable[[Any], Any],
    *,
    sleep: Callable[[float], None] = time.sleep,
) -> Any:
    """`gateway.call`, waiting here when the project's quota is spent for now (no job to give
    the thread back to): quota-aware, as a job's calls are."""
    waited = 0.0
    while True:
        try:
            return gateway.call(method, request_of)
        except QuotaWait as exc:
            if waited + exc.seconds > MAX_QUOTA_WAIT_SECONDS:
                raise
            sleep(exc.seconds)
            waited += exc.seconds
