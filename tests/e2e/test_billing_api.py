"""The billing API's contract: listing and paging, cancel, tenancy, validation, its document."""

from __future__ import annotations

import json
import re
import uuid
from datetime import datetime, timedelta, timezone
from urllib.parse import urljoin

import pytest
import redis
import requests
from pipeline import customer_params, new_domain
from sqlmodel import func, select

from bss import jobs
from bss.accounts import create_api_key, create_distributor
from bss.crypto import hash_api_key
from bss.db import session_scope
from bss.models import ApiKey, Distributor, Job
from bss.operations import get_operation


def api(tenant, method, path, key=None, **kw):
    headers = {"Authorization": f"Bearer {key or tenant.api_key}", **kw.pop("headers", {})}
    return requests.request(
        method, f"{tenant.stack.web}/api/v1{path}", headers=headers, timeout=10, **kw
    )


def distributor_of(s, api_key):
    key = s.exec(select(ApiKey).where(ApiKey.key_hash == hash_api_key(api_key))).one()
    return s.get(Distributor, key.distributor_id)


def job_count(tenant, api_key=None):
    with session_scope(tenant.stack.settings.database_url) as s:
        d = distributor_of(s, api_key or tenant.api_key)
        return s.exec(select(func.count()).select_from(Job).where(Job.distributor_id == d.id)).one()


def queued_job_ids(tenant) -> set[str]:
    """The job ids carried by every message waiting in Redis (ready or delayed)."""
    r = redis.Redis.from_url(tenant.stack.settings.redis_url)
    ids = set()
    for key in r.scan_iter("dramatiq:*.msgs"):
        for raw in r.hvals(key):
            ids.update(a for a in json.loads(raw).get("args", []) if isinstance(a, str))
    return ids


def all_job_ids(tenant) -> set[str]:
    with session_scope(tenant.stack.settings.database_url) as s:
        return set(s.exec(select(Job.id)).all())


@pytest.fixture
def stranger(tenant):
    """Another distributor's API key (a distributor without instances)."""
    with session_scope(tenant.stack.settings.database_url) as s:
        d = create_distributor(s, name=f"Stranger {uuid.uuid4().hex[:8]}")
        return create_api_key(s, distributor=d)


def test_jobs_are_listed_newest_first_filtered_and_paged_without_gaps(tenant):
    ref = f"INV-{uuid.uuid4().hex[:6]}"
    ids = [
        tenant.submit("customer.create", customer_params(new_domain()), external_ref=ref).json()[
            "id"
        ]
        for _ in range(5)
    ]
    for job_id in ids:
        tenant.wait(job_id)
    seen, cursor = [], None
    while True:
        params = {"external_ref": ref, "limit": 2, **({"cursor": cursor} if cursor else {})}
        page = api(tenant, "GET", "/jobs", params=params).json()
        assert len(page["jobs"]) <= 2
        seen += [j["id"] for j in page["jobs"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == list(reversed(ids))
    only = api(tenant, "GET", "/jobs", params={"external_ref": ref, "state": "failed"}).json()
    assert only["jobs"] == []
    by_op = api(tenant, "GET", "/jobs", params={"operation": "customer.create", "instance": "main"})
    assert {j["operation"] for j in by_op.json()["jobs"]} == {"customer.create"}
    unknown = api(tenant, "GET", "/jobs", params={"instance": "nope"})
    assert unknown.status_code == 404
    bad = api(tenant, "GET", "/jobs", params={"cursor": "garbage!", "limit": 0, "state": "x"})
    assert bad.status_code == 422
    fields = {d["field"] for d in bad.json()["error"]["details"]}
    assert {"limit", "state"} <= {f.split(".")[-1] for f in fields}


def test_time_filters_take_rfc3339_with_its_offset_or_a_date_and_nothing_else(tenant):
    ref = f"INV-{uuid.uuid4().hex[:6]}"
    job = tenant.submit("customer.create", customer_params(new_domain()), external_ref=ref).json()
    created = datetime.fromisoformat(job["created_at"])

    def listed(**filters):
        resp = api(tenant, "GET", "/jobs", params={"external_ref": ref, **filters})
        assert resp.status_code == 200, resp.text
        return [j["id"] for j in resp.json()["jobs"]]

    # The same instant written in another zone, just before and just after the job
    zone = timezone(timedelta(hours=2))
    before = (created - timedelta(seconds=1)).astimezone(zone).isoformat()
    after = (created + timedelta(seconds=1)).astimezone(zone).isoformat()
    assert listed(created_after=before) == [job["id"]]
    assert listed(created_after=after) == []
    assert listed(created_before=after) == [job["id"]]
    assert listed(created_after=created.date().isoformat()) == [job["id"]]
    for bad in ("0.5", "1700000000", "2026-11-28T09:30:00", "yesterday"):
        resp = api(tenant, "GET", "/jobs", params={"created_before": bad})
        assert resp.status_code == 422, bad
        [detail] = resp.json()["error"]["details"]
        assert detail["field"].endswith("created_before")
        assert detail["problem"].startswith("must be an RFC 3339 date-time"), detail


def test_a_queued_job_can_be_cancelled_and_a_finished_one_cannot(tenant):
    with session_scope(tenant.stack.settings.database_url) as s:
        job, _ = jobs.submit_job(
            s,
            distributor=distributor_of(s, tenant.api_key),
            instance_name="main",
            operation="customer.create",
            params=customer_params(new_domain()),
        )
        job_id = job.id  # recorded, not sent: it stays queued
    cancelled = api(tenant, "POST", f"/jobs/{job_id}/cancel")
    assert cancelled.status_code == 200 and cancelled.json()["state"] == "cancelled"
    again = api(tenant, "POST", f"/jobs/{job_id}/cancel")
    assert again.status_code == 409
    assert "only a queued or waiting job can be cancelled" in again.json()["error"]["message"]


def test_another_distributors_jobs_and_instances_do_not_exist_for_you(tenant, stranger):
    job_id = tenant.submit("customer.create", customer_params(new_domain())).json()["id"]
    for method, path in (
        ("GET", f"/jobs/{job_id}"),
        ("GET", f"/jobs/{job_id}/timeline"),
        ("POST", f"/jobs/{job_id}/cancel"),
    ):
        resp = api(tenant, method, path, key=stranger)
        assert resp.status_code == 404, (path, resp.text)
        assert resp.json()["error"]["code"] == "not_found"
    assert api(tenant, "GET", "/jobs", key=stranger).json()["jobs"] == []
    body = {"instance": "main", "operation": "customer.create", "params": customer_params("x.io")}
    resp = api(tenant, "POST", "/jobs", key=stranger, json=body)
    assert resp.status_code == 404 and "No instance named 'main'" in resp.text
    assert job_count(tenant, stranger) == 0


def test_refused_requests_list_every_problem_and_write_nothing(tenant):
    before, known = job_count(tenant), all_job_ids(tenant)
    order = {
        "customer": {"domain": "not a domain", "postal_address": {"country_code": "usa"}},
        "admin": {"primary_email": "nope", "given_name": "", "password": "short"},
        "subscriptions": [{"sku_id": "999", "plan": "TRIAL", "seats": 50}],
        "surprise": True,
    }
    resp = tenant.submit("order.create", order)
    assert resp.status_code == 422
    fields = {d["field"] for d in resp.json()["error"]["details"]}
    assert {
        "params.customer.domain",
        "params.customer.alternate_email",
        "params.customer.postal_address.country_code",
        "params.admin.primary_email",
        "params.admin.given_name",
        "params.admin.family_name",
        "params.admin.password",
        "params.subscriptions.0.sku_id",
        "params.subscriptions.0.seats",  # a rule across fields, told with the rest
        "params.surprise",
    } <= fields
    # A bad field and a rule across fields, both told at once, each at its field, in words
    mixed = customer_params("acme-mixed.example")
    mixed["alternate_email"] = "it@acme-mixed.example"
    mixed["postal_address"]["country_code"] = "usa"
    problems = {
        d["field"]: d["problem"]
        for d in tenant.submit("customer.create", mixed).json()["error"]["details"]
    }
    assert set(problems) == {"params.alternate_email", "params.postal_address.country_code"}
    assert problems["params.alternate_email"].startswith("must not be on the customer's own")
    assert not [p for p in problems.values() if "Value error" in p]
    # A request that only breaks Google's rules is refused as such, before any job exists
    trial = tenant.submit(
        "subscription.create",
        {"customer": "acme.example", "sku_id": "1010020027", "plan": "TRIAL", "seats": 11},
    )
    assert trial.status_code == 422
    error = trial.json()["error"]
    assert error["code"] == "refused_by_rule"
    assert error["details"] == [
        {"field": "params.seats", "problem": "a TRIAL subscription has at most 10 seats"}
    ]
    workspace_cancel = tenant.submit(
        "subscription.cancel",
        {"customer": "acme.example", "sku_id": "1010020027", "deletion_type": "cancel"},
    )
    assert "transfer_to_direct" in workspace_cancel.text
    assert job_count(tenant) == before
    # Messages in Redis carry only jobs that existed before (other tests' retries, webhooks)
    assert {i for i in queued_job_ids(tenant) if i.startswith("job_")} <= known


def test_an_idempotency_key_reused_with_another_body_is_refused(tenant):
    key = f"order-{uuid.uuid4().hex}"
    first = tenant.submit("customer.create", customer_params(new_domain()), idempotency_key=key)
    assert first.status_code == 202
    other = tenant.submit("customer.create", customer_params(new_domain()), idempotency_key=key)
    assert other.status_code == 422
    assert other.json()["error"]["code"] == "idempotency_key_reused"
    assert first.json()["id"] in other.json()["error"]["message"]


def test_the_openapi_document_has_every_route_and_operation_and_a_docs_page(tenant):
    doc = requests.get(f"{tenant.stack.web}/api/v1/openapi.json", timeout=10).json()
    assert set(doc["paths"]) == {
        "/api/v1/jobs",
        "/api/v1/jobs/{job_id}",
        "/api/v1/jobs/{job_id}/cancel",
        "/api/v1/jobs/{job_id}/timeline",
        "/api/v1/operations",
        "/api/v1/customers/{customer}",
        "/api/v1/customers/{customer}/subscriptions",
        "/api/v1/drift",
        "/api/v1/drift/{drift_id}",
        "/api/v1/drift/{drift_id}/resolve",
    }
    schemas = doc["components"]["schemas"]
    job_create = schemas["JobCreate"]
    # `operation` tells which params go with it: a discriminator generated clients understand
    assert job_create["discriminator"]["propertyName"] == "operation"
    mapping = job_create["discriminator"]["mapping"]
    assert {ref["$ref"] for ref in job_create["oneOf"]} == set(mapping.values())
    listed = api(tenant, "GET", "/operations").json()["operations"]
    assert len(listed) == 16 and set(mapping) == {o["name"] for o in listed}
    for operation in listed:
        variant = schemas[mapping[operation["name"]].rsplit("/", 1)[1]]
        assert variant["properties"]["operation"]["enum"] == [operation["name"]]
        assert variant["properties"]["params"]["$ref"] == operation["params_schema"]
        assert operation["params_schema"].rsplit("/", 1)[1] in schemas
    # The document's example order, sent as Swagger's "Try it out" sends it, is accepted
    post = doc["paths"]["/api/v1/jobs"]["post"]
    example = post["requestBody"]["content"]["application/json"]["examples"]["order.create"]
    request = {**example["value"], "instance": tenant.instance}
    request["params"]["customer"]["domain"] = domain = new_domain()
    request["params"]["admin"]["primary_email"] = f"ada@{domain}"
    resp = api(tenant, "POST", "/jobs", json=request)
    assert resp.status_code == 202, resp.text
    assert tenant.wait(resp.json()["id"])["state"] == "succeeded"
    # The idempotency header is documented under the name the server reads
    headers = {p["name"] for p in post["parameters"] if p["in"] == "header"}
    assert headers == {"Idempotency-Key"}
    page = requests.get(f"{tenant.stack.web}/api/v1/swagger", timeout=10)
    assert page.status_code == 200 and "swagger-ui" in page.text
    assets = re.findall(r'(?:src|href)="([^"]+)"', page.text)
    assert assets and not [a for a in assets if a.startswith(("http:", "https:", "//"))]
    for asset in assets:
        got = requests.get(urljoin(page.url, asset), timeout=10)
        assert got.status_code == 200, asset


def test_a_client_built_from_the_document_sends_an_order_twice_and_gets_one_job(tenant):
    # A client that knows only the OpenAPI document: the path, the header it names, an example
    doc = requests.get(f"{tenant.stack.web}/api/v1/openapi.json", timeout=10).json()
    post = doc["paths"]["/api/v1/jobs"]["post"]
    [header] = [p["name"] for p in post["parameters"] if p["in"] == "header"]
    example = post["requestBody"]["content"]["application/json"]["examples"]["customer.create"]
    body = {**example["value"], "instance": tenant.instance}
    body["params"] = {**body["params"], "domain": new_domain()}
    key = f"order-{uuid.uuid4().hex}"
    answers = [
        requests.post(
            f"{tenant.stack.web}/api/v1/jobs",
            json=body,
            headers={header: key, "Authorization": f"Bearer {tenant.api_key}"},
            timeout=10,
        )
        for _ in range(2)
    ]
    # Then the second is a replay of the first: one job
    assert [a.status_code for a in answers] == [202, 200]
    assert answers[0].json()["id"] == answers[1].json()["id"]
    ref, domain = body["external_ref"], body["params"]["domain"]
    listed = api(tenant, "GET", "/jobs", params={"external_ref": ref, "limit": 200}).json()
    mine = [j["id"] for j in listed["jobs"] if j["params"]["domain"] == domain]
    assert mine == [answers[0].json()["id"]]


def test_schemathesis_finds_no_server_error_and_refused_input_enqueues_nothing(tenant, stranger):
    import schemathesis
    from hypothesis import HealthCheck, given, settings

    schema = schemathesis.openapi.from_url(f"{tenant.stack.web}/api/v1/openapi.json")
    known = all_job_ids(tenant)
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=25,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            resp = case.call(
                base_url=f"{tenant.stack.web}", headers={"Authorization": f"Bearer {stranger}"}
            )
            if resp.status_code >= 500:
                failures.append((case.method, case.formatted_path, resp.status_code, resp.text))

        check()
    assert failures == []
    # The stranger has no instance: every job request was refused, none written or sent
    assert job_count(tenant, stranger) == 0
    assert {i for i in queued_job_ids(tenant) if i.startswith("job_")} <= known


def test_schemathesis_with_every_check_finds_the_document_true_for_a_key_with_an_instance(tenant):
    import schemathesis
    from hypothesis import HealthCheck, given, settings
    from schemathesis.specs.openapi.checks import positive_data_acceptance

    schema = schemathesis.openapi.from_url(f"{tenant.stack.web}/api/v1/openapi.json")
    failures = []
    for result in schema.get_all_operations():
        operation = result.ok()

        @given(case=operation.as_strategy())
        @settings(
            max_examples=30,
            deadline=None,
            database=None,
            suppress_health_check=list(HealthCheck),
        )
        def check(case):
            if isinstance(case.body, dict) and "instance" in case.body:
                case.body["instance"] = tenant.instance  # the one instance this key has
            if isinstance(case.query, dict):
                case.query.pop("cursor", None)  # opaque: only one a listing gave out is valid
            if case.headers and "Idempotency-Key" in case.headers:
                case.headers["Idempotency-Key"] = uuid.uuid4().hex  # one key, one request
            try:
                resp = case.call_and_validate(
                    base_url=f"{tenant.stack.web}",
                    headers={"Authorization": f"Bearer {tenant.api_key}"},
                    excluded_checks=[positive_data_acceptance],
                )
            except BaseExceptionGroup as group:  # every check that failed, with what was sent
                failures.append(f"{case.method} {case.formatted_path} {case.body!r}: {group}")
                return
            # Data the document allows is accepted, but for rules across fields (a plan and its
            # seats), e-mail deliverability and values of only whitespace, which JSON Schema
            # cannot say
            if resp.status_code == 422 and case.method == "POST":
                details = resp.json()["error"]["details"] or []
                across = {
                    f"params.{p.field}"
                    for p in get_operation(case.body["operation"]).params_model.cross_checks(
                        case.body["params"]
                    )
                }
                field_level = [
                    d
                    for d in details
                    if d["field"] not in across
                    and "not a valid email" not in d["problem"]
                    and "at least 1 character" not in d["problem"]  # blank once we strip it
                ]
                if field_level:
                    failures.append(f"POST {case.body!r} refused for {field_level}")

        check()
    assert failures == [], "\n".join(failures[:10])
