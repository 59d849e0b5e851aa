"""Bodies the billing API refuses before reading them, in the client's terms, changing nothing."""

from __future__ import annotations

import json
import logging

import pytest
from sqlmodel import func, select

from bss.accounts import create_api_key
from bss.db import session_scope
from bss.models import Job
from tests.support.samples import CUSTOMER
from web import create_app
from web.bodies import json_depth_exceeds


@pytest.fixture
def api(settings, tenant):
    with session_scope(settings.database_url) as s:
        key = create_api_key(s, distributor=s.merge(tenant), label="bodies")
    client = create_app(settings).test_client()

    def post(data, content_type="application/json"):
        return client.post(
            "/api/v1/jobs",
            data=data,
            headers={"Authorization": f"Bearer {key}"},
            content_type=content_type,
        )

    return post


def _jobs(settings, distributor):
    with session_scope(settings.database_url) as s:
        return s.exec(select(func.count()).where(Job.distributor_id == distributor.id)).one()


def _nested(depth):
    return '{"instance": "main", "operation": "customer.create", "params": ' + (
        '{"a": ' * depth + "1" + "}" * depth + "}"
    )


@pytest.mark.parametrize("depth", [500, 1000, 100_000])
def test_over_deep_json_is_400_with_one_log_line_and_no_job(api, settings, tenant, caplog, depth):
    caplog.set_level(logging.INFO)
    resp = api(_nested(depth))
    assert resp.status_code == 400
    error = resp.get_json()["error"]
    assert error["code"] == "body_too_deep"
    assert "more than 32 levels deep" in error["message"]
    assert _jobs(settings, tenant) == 0
    # One line in the log, no traceback
    refused = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(refused) == 1 and refused[0].exc_info is None
    assert "body_too_deep" in refused[0].getMessage()


def test_an_oversized_body_is_413(api, settings, tenant):
    resp = api(json.dumps({"instance": "main", "operation": "x", "params": {"a": "b" * 2_000_000}}))
    assert resp.status_code == 413
    assert resp.get_json()["error"]["code"] == "body_too_large"
    assert "at most 1048576" in resp.get_json()["error"]["message"]
    assert _jobs(settings, tenant) == 0


@pytest.mark.parametrize(
    ("data", "content_type", "status", "said"),
    [
        ('{"instance": "main",, }', "application/json", 400, "not valid JSON: Expecting"),
        ('{"instance": "main"', "application/json", 400, "line 1 column"),
        ('{"instance": "main"}', None, 415, "Content-Type: application/json"),
        ('{"instance": "main"}', "text/plain", 415, "Content-Type: application/json"),
        ('[{"instance": "main"}]', "application/json", 400, "must be a JSON object"),
        ("42", "application/json", 400, "must be a JSON object"),
    ],
)
def test_a_malformed_body_is_told_in_the_clients_terms(
    api, settings, tenant, data, content_type, status, said
):
    resp = api(data, content_type=content_type)
    assert resp.status_code == status, resp.get_json()
    assert said in resp.get_json()["error"]["message"]
    assert _jobs(settings, tenant) == 0


def test_brackets_inside_strings_do_not_count_as_nesting():
    text = json.dumps({"a": "[" * 100 + "{" * 100, "b": ['"\\]' * 50]})
    assert not json_depth_exceeds(text.encode(), 3)
    assert json_depth_exceeds(b"[[[[1]]]]", 3)
    assert not json_depth_exceeds(b"[[[1]]]", 3)


def _customer_order(name: str) -> dict:
    address = {**CUSTOMER["postal_address"], "organization_name": name}
    return {
        "instance": "main",
        "operation": "customer.create",
        "params": {**CUSTOMER, "postal_address": address},
    }


def test_text_holding_nul_is_400_naming_the_field_and_no_job(api, settings, tenant):
    # When billing sends an order whose organization name holds a NUL character (PostgreSQL
    # stores no text with it)
    resp = api(json.dumps(_customer_order("Acme\u0000 Inc")))
    # Then it is refused, naming the field, and nothing is recorded
    assert resp.status_code == 400, resp.get_json()
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_text"
    assert "'params.postal_address.organization_name'" in error["message"], error
    assert "U+0000" in error["message"]
    assert _jobs(settings, tenant) == 0
    # And a backslash followed by "u0000" is plain text, not a NUL: that order is taken
    resp = api(json.dumps(_customer_order("Acme \\u0000 Inc")))
    assert resp.status_code == 202, resp.get_json()
    assert _jobs(settings, tenant) == 1


def test_a_query_holding_nul_is_400_naming_the_parameter(settings, tenant):
    with session_scope(settings.database_url) as s:
        key = create_api_key(s, distributor=s.merge(tenant), label="queries")
    client = create_app(settings).test_client()
    headers = {"Authorization": f"Bearer {key}"}
    # When billing lists its jobs by an external reference holding a NUL character
    resp = client.get("/api/v1/jobs?external_ref=po%00-1", headers=headers)
    # Then it is told which parameter, not a server error
    assert resp.status_code == 400, resp.get_data(as_text=True)
    error = resp.get_json()["error"]
    assert error["code"] == "invalid_text" and "'external_ref'" in error["message"]
    # And the same list without it answers
    assert client.get("/api/v1/jobs?external_ref=po-1", headers=headers).status_code == 200
    # And a job's address holding one is refused the same way
    resp = client.get("/api/v1/jobs/job_1%00", headers=headers)
    assert resp.status_code == 400 and "The path contains" in resp.get_json()["error"]["message"]
