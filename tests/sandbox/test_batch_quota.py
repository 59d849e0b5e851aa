"""A batch request counts each of its calls against the project's quota, as Google does."""

from __future__ import annotations

from googleapiclient.http import BatchHttpRequest


def test_each_call_of_a_batch_counts_against_the_quota(world, reseller, sandbox):
    # Given a quota of 3 Reseller API calls per second on the project
    sandbox.post(
        "/_sandbox/quotas",
        {"project": world.project, "api": "reseller.googleapis.com", "per_second": 3},
    )
    statuses: dict[str, int] = {}

    def collect(request_id, response, exception):
        statuses[request_id] = exception.resp.status if exception else 200

    # When one batch carries five calls
    batch = BatchHttpRequest(callback=collect, batch_uri=world.origin + "/batch")
    for n in range(5):
        batch.add(reseller.customers().get(customerId=f"c{n}.example"), request_id=str(n))
    batch.execute()
    # Then three were answered and two were over the quota
    assert sorted(statuses.values()) == [404, 404, 404, 429, 429]
    logged = [(c["status"], c["reason"]) for c in sandbox.calls("reseller.*")]
    assert logged.count((429, "rateLimitExceeded")) == 2
