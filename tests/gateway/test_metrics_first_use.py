"""The gateway's counters in a fresh process whose threads all make their first call at once."""

from __future__ import annotations

import subprocess
import sys
import textwrap

PROGRAM = textwrap.dedent(
    """
    import threading
    import prometheus_client
    from bss.gateway import metrics

    errors = []
    start = threading.Barrier(8)

    def first_call():
        start.wait()
        try:
            metrics.google_call("reseller.customers.get", 200, 0.01)
        except Exception as exc:
            errors.append(repr(exc))

    def failing_log(*args, **kwargs):
        errors.append(args[0] % args[1:])

    metrics.log.exception = failing_log
    threads = [threading.Thread(target=first_call) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    counted = prometheus_client.REGISTRY.get_sample_value(
        "bss_google_calls_total",
        {"api": "reseller", "method": "reseller.customers.get", "status": "200"},
    )
    print(len(errors), counted)
    """
)


def test_eight_threads_first_google_calls_are_all_counted_and_none_fails():
    # A new interpreter each round: the race is on the very first use in a process.
    for _ in range(5):
        out = subprocess.run(
            [sys.executable, "-c", PROGRAM], capture_output=True, text=True, timeout=60, check=True
        ).stdout.split()
        assert out == ["0", "8.0"]
