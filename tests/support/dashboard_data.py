"""What tests do to set up dashboard users and jobs."""

from __future__ import annotations

import uuid
from datetime import timedelta
from pathlib import Path
from typing import Any

from bss.accounts import create_user
from bss.db import session_scope
from bss.models import Distributor, Instance, Job, utcnow
from tests.support.portal import PASSWORD, Account

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"


def make_user(database_url: str, role: str, distributor_id: int | None = None) -> Account:
    """A portal user of `role`; a viewer may belong to a distributor (read-only of it)."""
    tag = uuid.uuid4().hex[:8]
    with session_scope(database_url) as s:
        distributor = s.get(Distributor, distributor_id) if distributor_id else None
        user = create_user(
            s,
            email=f"{role}-{tag}@dashboard.example",
            role=role,
            distributor=distributor,
            password=PASSWORD,
        )
        # create_user keeps a distributor only for admins; a viewer's is set here.
        user.distributor_id = distributor_id
        s.add(user)
        s.flush()
        slug = distributor.slug if distributor else None
        return Account(user.email, PASSWORD, distributor_id, slug, user.id)  # type: ignore[arg-type]


def add_job(database_url: str, instance_id: int, **values: Any) -> str:
    """A job row as the pipeline leaves it (state, error, timestamps), for pages to show."""
    with session_scope(database_url) as s:
        instance = s.get(Instance, instance_id)
        assert instance is not None
        now = utcnow()
        job = Job(
            distributor_id=instance.distributor_id,
            instance_id=instance_id,
            operation=values.pop("operation", "customer.create"),
            params=values.pop("params", {"domain": f"{uuid.uuid4().hex[:6]}.example"}),
            request_hash="0" * 64,
            created_at=values.pop("created_at", now - timedelta(minutes=5)),
            **values,
        )
        s.add(job)
        s.flush()
        return job.id
