"""Billing's event for a job that ended is built from the row the end wrote (bss.jobs.rows
FINISH reads back what billing is shown), not from the job read again: it must still show the job
exactly as the API shows it. In process, against the sandbox over HTTP; SQLite or PostgreSQL."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.jobs.announce import job_url
from bss.jobs.schemas import JobPublic
from bss.models import Job, JobState, WebhookDelivery
from bss.notify import configure_webhook
from tests.gateway.test_gateway_pacing import Google
from tests.jobs.test_intake import order
from tests.jobs.test_last_step_saved import runner
from tests.support.samples import submit


@pytest.fixture
def google(sandbox: str) -> Google:
    return Google(sandbox)


def test_a_succeeded_jobs_event_shows_the_job_as_the_api_does(settings, sandbox, google, tenant):
    with session_scope(settings.database_url) as s:
        configure_webhook(
            s,
            settings=settings,
            distributor=s.merge(tenant),
            vault=vault_from_settings(settings),
            url="https://billing.example/h",
            resolve=lambda _host: ["93.184.216.34"],
        )
    job_id = submit(settings, tenant, params=order(1))
    sent: list[str] = []
    jobs = runner(settings, sandbox, google)
    jobs.notify = sent.append
    assert jobs.run(job_id, worker="w1") == JobState.SUCCEEDED
    with session_scope(settings.database_url) as s:
        [delivery] = s.exec(select(WebhookDelivery).where(WebhookDelivery.job_id == job_id)).all()
        job = s.get(Job, job_id)
        shown = JobPublic.of(job, instance_name="main", url=job_url(settings, job_id))
    assert sent == [delivery.id]
    assert delivery.event == "job.succeeded"
    # Every field, the timestamps the end wrote among them, as read from the job afterwards
    assert delivery.payload["data"]["job"] == shown.model_dump(mode="json")
    assert delivery.payload["data"]["job"]["state"] == "succeeded"
    assert delivery.payload["data"]["job"]["instance"] == "main"
