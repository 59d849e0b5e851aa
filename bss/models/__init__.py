"""Database models. Every table is created by the Alembic migrations, never by create_all."""

from bss.models.base import utcnow
from bss.models.instance import Instance, InstanceMode, InstanceStatus
from bss.models.job import Job, JobEvent, JobState
from bss.models.tenancy import ApiKey, Distributor

__all__ = [
    "ApiKey",
    "Distributor",
    "Instance",
    "InstanceMode",
    "InstanceStatus",
    "Job",
    "JobEvent",
    "JobState",
    "utcnow",
]
