"""Sample requests shared by the in-process tests, and submitting one as billing would."""

from bss import jobs
from bss.crypto import vault_from_settings
from bss.db import session_scope

CUSTOMER = {
    "domain": "acme.example",
    "alternate_email": "it@acme-corp.example.net",
    "postal_address": {
        "contact_name": "Ada",
        "organization_name": "Acme",
        "postal_code": "94043",
        "country_code": "US",
    },
}


def submit(settings, distributor, operation="customer.create", params=CUSTOMER):
    """Submit a job for the distributor's instance `main`; its id."""
    with session_scope(settings.database_url) as s:
        job, _ = jobs.submit_job(
            s,
            distributor=distributor,
            instance_name="main",
            operation=operation,
            params=params,
            vault=vault_from_settings(settings),
        )
        return job.id
