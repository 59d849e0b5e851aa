"""Many clients at once: one lock keeps Google's state consistent."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

from .helpers import customer_body


def test_concurrent_clients_lose_no_updates(world, sandbox):
    # Given eight workers, each with its own client (httplib2 is not thread-safe)
    def work(worker: int) -> int:
        reseller = world.service("reseller", "v1")
        for n in range(5):
            reseller.customers().insert(body=customer_body(f"w{worker}-{n}.example")).execute()
        return worker

    # When they all create customers at once
    with ThreadPoolExecutor(max_workers=8) as pool:
        assert sorted(pool.map(work, range(8))) == list(range(8))

    # Then every customer exists once, with a distinct id
    customers = [c for c in sandbox.state()["customers"] if c["reseller"] == world.reseller]
    assert len(customers) == 40
    assert len({c["customerId"] for c in customers}) == 40
