"""Dashboard fixtures (a pytest plugin of the root conftest): two distributors with jobs, a user
of every role, the app in-process."""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from bss.accounts import create_distributor
from bss.db import session_scope
from bss.models import (
    Drift,
    Instance,
    InstanceStatus,
    JobState,
    MailSender,
    NotificationRecipient,
    NotifyTopic,
    SenderMode,
    User,
    utcnow,
)
from bss.settings import Settings
from tests.support.dashboard_data import add_job, make_user
from tests.support.portal import Account, Portal
from web import create_app


@dataclass
class Side:
    """One distributor's things."""

    distributor_id: int
    distributor_name: str
    instance_id: int
    instance_name: str
    failed_job: str
    queued_job: str
    drift: str  # an open difference between billing's order and Google, on its instance


@dataclass
class World:
    a: Side
    b: Side
    users: dict[str, Account] = field(default_factory=dict)
    # The platform's own mail sender and recipient (operators manage them on Mail)
    platform_sender: int = 0
    platform_recipient: int = 0


def make_platform_mail(database_url: str) -> tuple[int, int]:
    """A platform sender (a service account without its key yet) and a platform recipient."""
    tag = uuid.uuid4().hex[:8]
    with session_scope(database_url) as s:
        sender = MailSender(
            distributor_id=None,
            name=f"platform-{tag}",
            mode=SenderMode.SERVICE_ACCOUNT,
            from_address=f"alerts-{tag}@platform.example",
        )
        recipient = NotificationRecipient(
            distributor_id=None,
            address=f"ops-{tag}@platform.example",
            topics=[NotifyTopic.INSTANCE_NEEDS_REAUTH],
        )
        s.add(sender)
        s.add(recipient)
        s.flush()
        return sender.id, recipient.id  # type: ignore[return-value]


def make_side(database_url: str, label: str) -> Side:
    tag = uuid.uuid4().hex[:8]
    with session_scope(database_url) as s:
        d = create_distributor(s, name=f"{label} Distributor {tag}")
        instance = Instance(
            distributor_id=d.id,
            name=f"{label.lower()}-instance-{tag}",  # type: ignore[arg-type]
            status=InstanceStatus.NEEDS_REAUTH,
            last_error=f"invalid_grant: {label} token revoked",
        )
        s.add(instance)
        s.flush()
        ids = (d.id, d.name, instance.id, instance.name)
    failed = add_job(
        database_url,
        ids[2],
        state=JobState.FAILED,
        attempts=1,
        external_ref=f"INV-{label}-{tag}",
        idempotency_key=f"key-{label}-{tag}",
        params={"domain": f"{label.lower()}-{tag}.example", "password": "hunter2-hunter2"},
        error={"code": "google_invalid", "message": "Google refused: invalid", "hint": "Fix it."},
        finished_at=utcnow() - timedelta(minutes=1),
    )
    queued = add_job(database_url, ids[2], state=JobState.QUEUED)
    with session_scope(database_url) as s:
        drift = Drift(
            distributor_id=ids[0],  # type: ignore[arg-type]
            instance_id=ids[2],  # type: ignore[arg-type]
            customer_id=f"C0{tag[:7]}",
            customer_domain=f"{label.lower()}-{tag}.example",
            sku_id="1010020027",
            field="seats",
            desired=5,
            actual=9,
            desired_job_id=failed,
        )
        s.add(drift)
        drift_id = drift.id
    return Side(ids[0], ids[1], ids[2], ids[3], failed, queued, drift_id)  # type: ignore[arg-type]


@pytest.fixture
def world(database_url: str) -> World:
    """Distributors A and B with an instance and jobs each, and a user of every role:
    operator, admin of A, admin of B, viewer of everything, viewer of B."""
    a, b = make_side(database_url, "A"), make_side(database_url, "B")
    users = {
        "operator": make_user(database_url, "operator"),
        "admin_a": make_user(database_url, "distributor_admin", a.distributor_id),
        "admin_b": make_user(database_url, "distributor_admin", b.distributor_id),
        "viewer": make_user(database_url, "viewer"),
        "viewer_b": make_user(database_url, "viewer", b.distributor_id),
    }
    return World(a, b, users, *make_platform_mail(database_url))


@pytest.fixture
def dashboard_settings(
    tmp_path: Path, database_url: str, secret_keys: str, redis_url: str
) -> Settings:
    return Settings(
        BSS_HOME=str(tmp_path),
        DATABASE_URL=database_url,
        REDIS_URL=redis_url,
        BSS_SECRET_KEYS=secret_keys,
        BSS_SESSION_SECRET="dashboard-tests-" + uuid.uuid4().hex,
        GOOGLE_SANDBOX_URL="http://127.0.0.1:9",
    )


@pytest.fixture
def sent() -> list[str]:
    """Job ids the app sent to the broker (the edge of the system: no worker here)."""
    return []


@pytest.fixture
def mailed() -> list[str]:
    """Mail message ids the app sent to the broker (no mail worker here)."""
    return []


@pytest.fixture
def dashboard_app(dashboard_settings: Settings, sent: list[str], mailed: list[str]) -> Any:
    """The web app in-process, its broker replaced by lists of the job and mail ids sent."""
    app = create_app(dashboard_settings)
    app.extensions["bss.send"] = sent.append
    app.extensions["bss.send_mail"] = mailed.append
    return app


def signed_in(app: Any, account: Account) -> Portal:
    return Portal(app.test_client()).sign_in(account)


def user_row(database_url: str, account: Account) -> User:
    with session_scope(database_url) as s:
        user = s.get(User, account.user_id)
        assert user is not None
        s.expunge(user)
        return user
