"""Injected faults: Google errors, timeouts, dropped connections, lost responses, latency."""

from __future__ import annotations

import time

import google_auth_httplib2
import httplib2
import pytest
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from .helpers import customer_body, error_of


def fault(sandbox, **rule):
    return sandbox.post("/_sandbox/faults", rule)["id"]


def test_error_fault_for_the_next_call_then_normal_service(world, reseller, sandbox):
    fault(
        sandbox,
        method="reseller.customers.get",
        kind="error",
        status=503,
        reason="backendError",
        times=1,
    )
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    status, reason, body = error_of(excinfo)
    # in the Reseller API's own shape: no "status", so clients classify by reason and retry
    assert (status, reason, body["error"].get("status")) == (503, "backendError", None)
    assert body["error"]["errors"][0]["message"] == "Backend Error"
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    assert error_of(excinfo)[0] == 404


def test_the_library_retries_transient_errors_when_asked(reseller, sandbox):
    fault(sandbox, method="reseller.customers.*", kind="error", status=500, times=1)
    created = (
        reseller.customers().insert(body=customer_body("retry.example")).execute(num_retries=2)
    )
    assert created["customerDomain"] == "retry.example"
    assert [c["status"] for c in sandbox.calls("reseller.*")] == [500, 200]


def test_probability_one_always_fires_until_cleared(reseller, sandbox):
    fault(
        sandbox,
        method="reseller.*",
        kind="error",
        status=429,
        reason="rateLimitExceeded",
        probability=1.0,
    )
    for _ in range(2):
        with pytest.raises(HttpError) as excinfo:
            reseller.customers().get(customerId="x.example").execute()
        assert error_of(excinfo)[:2] == (429, "rateLimitExceeded")
    sandbox.call("DELETE", "/_sandbox/faults")
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    assert error_of(excinfo)[0] == 404


def test_a_dropped_connection_is_retried_once_by_httplib2(reseller, sandbox):
    fault(sandbox, method="reseller.customers.get", kind="drop", times=1)
    with pytest.raises(HttpError):
        reseller.customers().get(customerId="x.example").execute()  # the silent retry got 404
    fault(sandbox, method="reseller.customers.get", kind="drop", times=2)
    with pytest.raises((ConnectionError, httplib2.HttpLib2Error)):
        reseller.customers().get(customerId="x.example").execute()
    assert [c["status"] for c in sandbox.calls("reseller.*")] == [None, 404, None, None]


def test_applied_but_response_lost(reseller, sandbox):
    # Given the response to our insert is lost after Google applied it
    fault(sandbox, method="reseller.customers.insert", kind="applied_response_lost", times=1)

    # When we insert, httplib2 silently resends, and Google says it exists already
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().insert(body=customer_body("lost.example")).execute()
    assert error_of(excinfo)[:2] == (409, "duplicate")

    # Then the customer is there
    assert (
        reseller.customers().get(customerId="lost.example").execute()["customerDomain"]
        == "lost.example"
    )


def test_a_timeout_outlasts_the_client_and_still_applies(world, sandbox):
    fault(sandbox, method="reseller.customers.insert", kind="timeout", seconds=1.5, times=1)
    http = google_auth_httplib2.AuthorizedHttp(world.credentials(), http=httplib2.Http(timeout=0.5))
    reseller = build(
        "reseller",
        "v1",
        http=http,
        static_discovery=True,
        client_options={"api_endpoint": world.origin + "/"},
    )
    with pytest.raises(TimeoutError):
        reseller.customers().insert(body=customer_body("slow.example")).execute()
    time.sleep(1.5)
    assert any(c["customerDomain"] == "slow.example" for c in sandbox.state()["customers"])


def test_latency_slows_matching_calls(reseller, sandbox):
    sandbox.post("/_sandbox/latency", {"seconds": 0.4, "method": "reseller.customers.get"})
    start = time.monotonic()
    with pytest.raises(HttpError):
        reseller.customers().get(customerId="x.example").execute()
    assert time.monotonic() - start >= 0.4
    sandbox.post("/_sandbox/latency", {"seconds": 0, "method": "reseller.customers.get"})
    start = time.monotonic()
    with pytest.raises(HttpError):
        reseller.customers().get(customerId="x.example").execute()
    assert time.monotonic() - start < 0.4


def test_token_endpoint_faults_are_retried_by_google_auth(world, reseller, sandbox):
    fault(sandbox, method="oauth2.token", kind="error", status=503, times=1)
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    assert error_of(excinfo)[0] == 404
    assert [c["status"] for c in sandbox.calls("oauth2.token")] == [503, 200]


@pytest.mark.parametrize(
    ("status", "reason", "retried"),
    [
        (403, "rateLimitExceeded", True),
        (403, "userRateLimitExceeded", True),
        (403, "quotaExceeded", False),
        (403, "dailyLimitExceeded", False),
        (429, "quotaExceeded", True),
        (500, "backendError", True),
        (502, "backendError", True),
        (503, "backendError", True),
        (504, "backendError", True),
    ],
)
def test_googles_transient_error_rows_reach_the_client_as_google_sends_them(
    reseller, sandbox, status, reason, retried
):
    # Given Google answers the next call with one of its transient errors
    fault(
        sandbox,
        method="reseller.customers.get",
        kind="error",
        status=status,
        reason=reason,
        times=1,
    )

    # When the client calls without retries, it sees that status and reason
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    assert error_of(excinfo)[:2] == (status, reason)

    # And with retries, the library retries exactly the ones it treats as transient
    fault(
        sandbox,
        method="reseller.customers.get",
        kind="error",
        status=status,
        reason=reason,
        times=1,
    )
    with pytest.raises(HttpError) as excinfo:
        request = reseller.customers().get(customerId="x.example")
        request._sleep = lambda seconds: None  # no back-off pause in tests
        request.execute(num_retries=1)
    assert error_of(excinfo)[0] == (404 if retried else status)
