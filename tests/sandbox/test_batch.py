"""/batch as google-api-python-client's BatchHttpRequest sends and reads it."""

from __future__ import annotations

from googleapiclient.errors import HttpError
from googleapiclient.http import BatchHttpRequest

from .helpers import customer_body


def run_batch(world, requests_):
    results = {}

    def collect(request_id, response, exception):
        results[request_id] = (response, exception)

    batch = BatchHttpRequest(callback=collect, batch_uri=world.origin + "/batch")
    for request_id, request in requests_:
        batch.add(request, request_id=request_id)
    batch.execute()
    return results


def test_each_call_in_a_batch_is_answered_under_its_own_id(world, reseller, sandbox):
    results = run_batch(
        world,
        [
            ("create", reseller.customers().insert(body=customer_body("one.example"))),
            ("free", reseller.customers().get(customerId="free.example")),
            (
                "bad",
                reseller.customers().insert(
                    body=customer_body("bad.example", alternateEmail="x@bad.example")
                ),
            ),
        ],
    )
    created, error = results["create"]
    assert error is None and created["customerDomain"] == "one.example"
    assert isinstance(results["free"][1], HttpError) and results["free"][1].resp.status == 404
    assert results["bad"][1].resp.status == 400
    # Each inner call is a call of its own at Google
    logged = [(c["method"], c["status"], c["batch"]) for c in sandbox.calls("reseller.*")]
    assert logged == [
        ("reseller.customers.insert", 200, True),
        ("reseller.customers.get", 404, True),
        ("reseller.customers.insert", 400, True),
    ]


def test_inner_calls_meet_faults_and_expired_tokens(world, reseller, sandbox):
    run_batch(world, [("warmup", reseller.customers().get(customerId="free.example"))])
    sandbox.post("/_sandbox/clock", {"advance_seconds": 3600})
    sandbox.post(
        "/_sandbox/faults",
        {
            "method": "reseller.customers.insert",
            "kind": "error",
            "status": 503,
            "reason": "backendError",
        },
    )
    results = run_batch(
        world,
        [
            ("a", reseller.customers().insert(body=customer_body("a.example"))),
            ("b", reseller.customers().insert(body=customer_body("b.example"))),
        ],
    )
    # The expired token got a 401 per part; the library refreshed and resent both parts,
    # and the fault hit the first insert that reached the API.
    statuses = sorted((r[1].resp.status if r[1] else 200) for r in results.values())
    assert statuses == [200, 503]
    assert [c["status"] for c in sandbox.calls("reseller.customers.insert")] == [401, 401, 503, 200]
