"""Accepting jobs: validation, idempotency, tenancy. Real database, no Google."""

from __future__ import annotations

import uuid

import pytest
from sqlmodel import col, select

from bss import jobs
from bss.accounts import create_distributor
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import IdempotencyConflict, InvalidState, NotFound, ValidationFailed
from bss.instances import create_instance
from bss.models import Job, JobEvent, JobState
from tests.support.samples import CUSTOMER


def submit(settings, distributor, **kw):
    args = {"instance_name": "main", "operation": "customer.create", "params": CUSTOMER} | kw
    with session_scope(settings.database_url) as s:
        return jobs.submit_job(s, distributor=distributor, **args)


def count_jobs(settings, distributor) -> int:
    with session_scope(settings.database_url) as s:
        return len(s.exec(select(Job).where(Job.distributor_id == distributor.id)).all())


def test_a_valid_request_is_recorded_queued_with_its_normalised_params(settings, tenant):
    job, created = submit(settings, tenant, params={**CUSTOMER, "domain": "ACME.example"})
    assert created and job.state == JobState.QUEUED
    assert job.params["domain"] == "acme.example"
    with session_scope(settings.database_url) as s:
        events = s.exec(
            select(JobEvent).where(JobEvent.job_id == job.id).order_by(col(JobEvent.id))
        ).all()
    assert [e.message for e in events] == ["Accepted"]


def test_the_same_idempotency_key_and_body_return_the_same_job(settings, tenant):
    first, created = submit(settings, tenant, idempotency_key="order-42")
    again, created_again = submit(settings, tenant, idempotency_key="order-42")
    assert created and not created_again
    assert again.id == first.id
    assert count_jobs(settings, tenant) == 1


def test_the_same_idempotency_key_with_another_body_is_refused(settings, tenant):
    first, _ = submit(settings, tenant, idempotency_key="order-43")
    other = {**CUSTOMER, "domain": "other.example"}
    with pytest.raises(IdempotencyConflict, match=first.id):
        submit(settings, tenant, idempotency_key="order-43", params=other)
    assert count_jobs(settings, tenant) == 1


def test_idempotency_keys_belong_to_one_distributor(settings, tenant):
    with session_scope(settings.database_url) as s:
        other = create_distributor(s, name=f"Other {uuid.uuid4().hex[:8]}")
        create_instance(
            s,
            vault=vault_from_settings(settings),
            distributor=other,
            name="main",
            client_id="123456789012-abcdefghijklmnopqrstuvwxyz012345.apps.googleusercontent.com",
            client_secret="s",
        )
    mine, _ = submit(settings, tenant, idempotency_key="shared-key")
    theirs, created = submit(settings, other, idempotency_key="shared-key")
    assert created and theirs.id != mine.id


def test_every_bad_field_is_listed_and_nothing_is_written(settings, tenant):
    bad = {
        "domain": "not a domain",
        "alternate_email": "nope",
        "postal_address": {"contact_name": "Ada", "country_code": "usa"},
        "surprise": 1,
    }
    with pytest.raises(ValidationFailed) as err:
        submit(settings, tenant, params=bad)
    fields = {d["field"] for d in err.value.details}
    assert {
        "params.domain",
        "params.alternate_email",
        "params.postal_address.organization_name",
        "params.postal_address.postal_code",
        "params.postal_address.country_code",
        "params.surprise",
    } <= fields
    assert count_jobs(settings, tenant) == 0


def test_an_alternate_email_on_the_customers_own_domain_is_refused(settings, tenant):
    with pytest.raises(ValidationFailed) as err:
        submit(settings, tenant, params={**CUSTOMER, "alternate_email": "boss@acme.example"})
    assert "must not be on the customer's own domain" in str(err.value.details)


def test_an_unknown_operation_names_the_known_ones(settings, tenant):
    with pytest.raises(ValidationFailed) as err:
        submit(settings, tenant, operation="customer.explode")
    assert "customer.create" in err.value.details[0]["problem"]


def test_another_distributors_instance_does_not_exist_for_you(settings, tenant):
    with session_scope(settings.database_url) as s:
        other = create_distributor(s, name=f"Other {uuid.uuid4().hex[:8]}")
    with pytest.raises(NotFound):
        submit(settings, other)


def test_only_a_queued_job_can_be_cancelled(settings, tenant):
    job, _ = submit(settings, tenant)
    with session_scope(settings.database_url) as s:
        cancelled = jobs.cancel_queued_job(s, s.get(Job, job.id))
    assert cancelled.state == JobState.CANCELLED
    with session_scope(settings.database_url) as s, pytest.raises(InvalidState):
        jobs.cancel_queued_job(s, s.get(Job, job.id))
