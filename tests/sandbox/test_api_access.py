"""What every API call meets: bearer token, enabled API, scope, and per-project quota."""

from __future__ import annotations

import time

import pytest
import requests
from googleapiclient.errors import HttpError

from .helpers import ORDER, USER, error_of


def test_missing_and_bad_tokens_are_401_in_googles_shape(world):
    url = world.origin + "/apps/reseller/v1/customers/x.example"
    missing = requests.get(url, timeout=10)
    assert missing.status_code == 401
    body = missing.json()["error"]
    assert (body["status"], body["errors"][0]["reason"]) == ("UNAUTHENTICATED", "required")
    assert "Bearer" in missing.headers["WWW-Authenticate"]
    bad = requests.get(url, headers={"Authorization": "Bearer ya29.nonsense"}, timeout=10)
    assert (bad.status_code, bad.json()["error"]["errors"][0]["reason"]) == (401, "authError")


def test_a_disabled_api_is_access_not_configured(world, reseller, sandbox):
    sandbox.call(
        "PATCH", f"/_sandbox/projects/{world.project}", {"disable": ["reseller.googleapis.com"]}
    )
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason) == (403, "accessNotConfigured")
    assert "reseller.googleapis.com/overview?project=" in body["error"]["message"]

    sandbox.call(
        "PATCH", f"/_sandbox/projects/{world.project}", {"enable": ["reseller.googleapis.com"]}
    )
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()
    assert error_of(excinfo)[0] == 404


def test_a_token_without_the_scope_is_insufficient_permissions(world):
    directory_only = world.service("reseller", "v1", credentials=world.credentials([USER]))
    with pytest.raises(HttpError) as excinfo:
        directory_only.customers().get(customerId="x.example").execute()
    status, reason, body = error_of(excinfo)
    assert (status, reason, body["error"]["status"]) == (
        403,
        "insufficientPermissions",
        "PERMISSION_DENIED",
    )


def test_over_the_quota_reseller_answers_429_and_directory_403(world, sandbox, customer):
    sandbox.post(
        "/_sandbox/quotas",
        {"project": world.project, "api": "reseller.googleapis.com", "per_second": 2},
    )
    sandbox.post(
        "/_sandbox/quotas",
        {"project": world.project, "api": "admin.googleapis.com", "per_second": 1},
    )
    reseller = world.service("reseller", "v1", credentials=world.credentials([ORDER]))
    directory = world.service("admin", "directory_v1")
    statuses = []
    for _ in range(3):
        try:
            reseller.customers().get(customerId="acme.example").execute()
            statuses.append(200)
        except HttpError as error:
            statuses.append(error.resp.status)
            assert error_of(pytest.ExceptionInfo.from_exception(error))[1] == "rateLimitExceeded"
    assert statuses == [200, 200, 429]
    directory.users().get(userKey=world.admin).execute()
    with pytest.raises(HttpError) as excinfo:
        directory.users().get(userKey=world.admin).execute()
    assert error_of(excinfo)[:2] == (403, "rateLimitExceeded")
    time.sleep(1.05)
    assert (
        reseller.customers().get(customerId="acme.example").execute()["customerDomain"]
        == "acme.example"
    )


def test_the_call_log_names_method_status_client_and_project(world, reseller, sandbox):
    with pytest.raises(HttpError):
        reseller.customers().get(customerId="x.example").execute()
    (call,) = sandbox.calls("reseller.*")
    assert call["method"] == "reseller.customers.get"
    assert (call["status"], call["reason"]) == (404, "notFound")
    assert (call["client_id"], call["project"], call["user"]) == (
        world.client["client_id"],
        world.project,
        world.admin,
    )
    assert call["time"].endswith("Z")
