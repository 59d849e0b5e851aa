"""What billing is told about a job: its webhook events, carrying the job as the API shows it."""

from __future__ import annotations

from sqlmodel import Session

from bss.jobs.schemas import JobPublic
from bss.models import Distributor, Instance, Job
from bss.notify import record_event
from bss.settings import Settings


def job_url(settings: Settings, job_id: str) -> str:
    """Where the billing system reads the job (the first public base URL)."""
    base = settings.base_urls[0] if settings.base_urls else ""
    return f"{base}/api/v1/jobs/{job_id}"


def job_event(
    session: Session, settings: Settings, job: Job, event: str, *, instance_name: str | None = None
) -> str | None:
    """Record a job event for the distributor's webhook; its delivery id, to send after commit
    (None when the distributor has no webhook: then the payload is not even built). The name
    of the job's instance is read unless given."""
    distributor = session.get(Distributor, job.distributor_id)
    if distributor is None or not distributor.webhook_url:
        return None
    if instance_name is None:
        instance = session.get(Instance, job.instance_id)
        instance_name = instance.name if instance else ""
    public = JobPublic.of(job, instance_name=instance_name, url=job_url(settings, job.id))
    delivery = record_event(
        session,
        distributor_id=job.distributor_id,
        event=event,
        data={"job": public.model_dump(mode="json")},
        job_id=job.id,
        instance_id=job.instance_id,
    )
    return delivery.id if delivery else None
