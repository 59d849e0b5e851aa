"""E-mail notifications end to end: real web, worker and scheduler processes, the sandbox over
HTTP and SMTP. A revoked grant is mailed once (not per job) through each sending mode, reminded
while unresolved and no more once re-authenticated; a mailbox whose token died is refused with
Gmail's answer, shown on the sender and reported through another sender; a storm of failed jobs
is one digest."""

from __future__ import annotations

import sys
import time
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import pytest
import requests
from pipeline import sandbox_post
from sqlmodel import col, select

from bss.broker import make_broker, send_mail
from bss.crypto import Vault
from bss.db import session_scope
from bss.gateway import REQUIRED_SCOPES
from bss.instances import store_oauth_grant
from bss.models import (
    Alert,
    Distributor,
    Instance,
    Job,
    JobState,
    MailMessage,
    MailSender,
    NotifyTopic,
    SenderMode,
    SenderStatus,
)
from bss.notify import queue_mail
from bss.settings import Settings
from bss.tools import SandboxTenant, Supervisor, free_port, sandbox_tenant, wait_http
from tests.support.mail import MODES, add_recipient, mail_to, sender_of_mode

REMINDER_SECONDS = 4
DIGEST_SECONDS = 40


@dataclass
class NotifyStack:
    web: str
    sandbox: str
    settings: Settings


@pytest.fixture(scope="module")
def notify_stack(
    database_url: str,
    redis_url: str,
    broker_url: str,
    secret_keys: str,
    sandbox_url: str,
    sandbox_smtp: tuple[str, int, str],
    tmp_path_factory: pytest.TempPathFactory,
) -> Iterator[NotifyStack]:
    """Web, worker and scheduler processes of this module's own, reminding every few seconds
    and digesting failed jobs over a short window; they stop with the module."""
    home = tmp_path_factory.mktemp("notify-home")
    supervisor = Supervisor(log_dir=home / "logs")
    port = free_port()
    web = f"http://127.0.0.1:{port}"
    smtp_host, smtp_port, smtp_ca_file = sandbox_smtp
    env = {
        "BSS_HOME": str(home),
        "DATABASE_URL": database_url,
        "REDIS_URL": redis_url,
        "BSS_BROKER_URL": broker_url,
        "BSS_SECRET_KEYS": secret_keys,
        "GOOGLE_SANDBOX_URL": sandbox_url,
        "GOOGLE_SMTP_HOST": smtp_host,
        "GOOGLE_SMTP_PORT": str(smtp_port),
        "GOOGLE_SMTP_CA_FILE": smtp_ca_file,
        "BSS_PUBLIC_BASE_URLS": web,
        "BSS_ALERT_REMINDER_SECONDS": str(REMINDER_SECONDS),
        "BSS_FAILED_JOBS_DIGEST_SECONDS": str(DIGEST_SECONDS),
        "BSS_MAIL_RETRY_BASE_SECONDS": "0.2",
        "BSS_MAIL_RETRY_MAX_SECONDS": "1",
        "BSS_JOB_RETRY_BASE_SECONDS": "0.2",
        "BSS_JOB_RETRY_MAX_SECONDS": "1",
        "GOOGLE_HTTP_TIMEOUT": "5",
        # 200 jobs within the digest window: the reseller API's pace is not what is tested here
        "BSS_QUOTA_RESELLER": "200",
    }
    gunicorn = ["-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", "1"]
    proc = supervisor.start(
        "notify-web", [sys.executable, *gunicorn, "--threads", "4", "web.wsgi:app"], env=env
    )
    supervisor.start(
        "notify-worker",
        [sys.executable, "-m", "dramatiq", "workers", "--processes", "1", "--threads", "4"],
        env=env,
    )
    supervisor.python("notify-scheduler", "-m", "bss", "scheduler", env=env)
    try:
        wait_http(f"{web}/healthz", proc=proc)
        yield NotifyStack(web, sandbox_url, Settings(**env))
    finally:
        supervisor.stop_all()


@dataclass
class Told:
    """A distributor of the stack, its recipient's address, and how to reach both."""

    stack: NotifyStack
    tenant: SandboxTenant
    ops: str

    @property
    def settings(self) -> Settings:
        return self.stack.settings

    def submit(self, operation: str, params: dict[str, Any]) -> str:
        resp = requests.post(
            f"{self.stack.web}/api/v1/jobs",
            json={"instance": self.tenant.instance, "operation": operation, "params": params},
            headers={"Authorization": f"Bearer {self.tenant.api_key}"},
            timeout=10,
        )
        assert resp.status_code == 202, resp.text
        return str(resp.json()["id"])

    def jobs_in(self, ids: list[str], state: str) -> bool:
        with session_scope(self.settings.database_url) as s:
            rows = s.exec(select(Job.state).where(col(Job.id).in_(ids))).all()
        return len(rows) == len(ids) and all(r == state for r in rows)

    def mail(self) -> list[dict[str, Any]]:
        return mail_to(self.stack.sandbox, self.ops)


def wait_for(check: Callable[[], Any], timeout: float = 30.0) -> Any:
    deadline = time.monotonic() + timeout
    while True:
        found = check()
        if found or time.monotonic() > deadline:
            return found
        time.sleep(0.2)


@pytest.fixture
def told(notify_stack: NotifyStack, sandbox: str) -> Told:
    """Given a distributor with an authenticated instance `main` and an address told about
    everything but test messages."""
    tenant = sandbox_tenant(
        sandbox,
        notify_stack.settings,
        name=f"Notified {uuid.uuid4().hex[:8]}",
        redirect_uris=[f"{notify_stack.web}/cb"],
        api_key_label="test",
    )
    ops = f"ops-{uuid.uuid4().hex[:6]}@distributor.example"
    topics = [t.value for t in NotifyTopic if t != NotifyTopic.TEST]
    add_recipient(
        notify_stack.settings, distributor_id=tenant.distributor_id, topics=topics, address=ops
    )
    return Told(notify_stack, tenant, ops)


def refresh_token_of(told: Told) -> str:
    vault = Vault(told.settings.secret_keys.split(","))
    with session_scope(told.settings.database_url) as s:
        instance = s.get(Instance, told.tenant.instance_id)
        assert instance is not None and instance.refresh_token_enc
        return vault.decrypt(instance.refresh_token_enc)


def reauthenticate(told: Told) -> None:
    """The distributor clicks Authenticate Instance again: a new refresh token."""
    t = told.tenant
    grant = sandbox_post(
        told.stack.sandbox,
        "/_sandbox/tokens",
        {"client_id": t.client_id, "user": t.admin, "scopes": list(REQUIRED_SCOPES)},
    )
    with session_scope(told.settings.database_url) as s:
        instance = s.get(Instance, t.instance_id)
        assert instance is not None
        store_oauth_grant(
            s,
            instance,
            vault=Vault(told.settings.secret_keys.split(",")),
            refresh_token=grant["refresh_token"],
            scopes=grant["scope"].split(),
            authenticated_as=t.admin,
        )


def gmail_api_instance(told: Told) -> SandboxTenant:
    """A second instance of the distributor, `mail`, authenticated as another of its reseller's
    accounts: the Gmail API sender acts as it (the instance `main` is the one that breaks)."""
    t, sandbox = told.tenant, told.stack.sandbox
    user = f"mailer@{t.reseller}"
    sandbox_post(sandbox, f"/_sandbox/resellers/{t.reseller}/users", {"email": user})
    grant = sandbox_post(
        sandbox,
        "/_sandbox/tokens",
        {"client_id": t.client_id, "user": user, "scopes": list(REQUIRED_SCOPES)},
    )
    vault = Vault(told.settings.secret_keys.split(","))
    with session_scope(told.settings.database_url) as s:
        main = s.get(Instance, t.instance_id)
        assert main is not None and main.client_secret_enc
        mail = Instance(
            distributor_id=t.distributor_id,
            name="mail",
            client_id=t.client_id,
            client_secret_enc=main.client_secret_enc,
        )
        s.add(mail)
        s.flush()
        store_oauth_grant(
            s,
            mail,
            vault=vault,
            refresh_token=grant["refresh_token"],
            scopes=grant["scope"].split(),
            authenticated_as=user,
        )
        assert mail.id is not None
        return SandboxTenant(
            distributor_id=t.distributor_id,
            instance_id=mail.id,
            instance="mail",
            reseller=t.reseller,
            admin=user,
            client_id=t.client_id,
            client_secret=t.client_secret,
            api_key=None,
        )


def slug_of(told: Told) -> str:
    with session_scope(told.settings.database_url) as s:
        distributor = s.get(Distributor, told.tenant.distributor_id)
        assert distributor is not None
        return distributor.slug


def send_test_message(told: Told, sender_id: int) -> None:
    """What "Send a test message" does: a message through that sender, handed to the workers."""
    with session_scope(told.settings.database_url) as s:
        message = queue_mail(
            s,
            distributor_id=told.tenant.distributor_id,
            topic=NotifyTopic.TEST,
            recipients=[told.ops],
            subject="[BSS] Test message",
            body="A test of the mail sender.\n",
            sender_id=sender_id,
        )
    broker = make_broker(told.settings)
    try:
        send_mail(broker, message.id)
    finally:
        broker.close()


@pytest.mark.parametrize("mode", MODES)
def test_a_revoked_grant_is_mailed_once_reminded_and_quiet_after_reauthentication(
    told: Told, mode: str
) -> None:
    # Given the distributor's mail sender of this mode
    acting_as = gmail_api_instance(told) if mode == SenderMode.GMAIL_API else told.tenant
    sender_id, sender_address = sender_of_mode(told.settings, told.stack.sandbox, acting_as, mode)

    # When the reseller's admin revokes the instance's grant at Google, and jobs keep coming
    sandbox_post(told.stack.sandbox, "/_sandbox/revoke", {"token": refresh_token_of(told)})
    jobs = [told.submit("customer.sync", {"customer": f"c{n}.example"}) for n in range(4)]
    assert wait_for(lambda: told.jobs_in(jobs, JobState.WAITING_REAUTH)), "jobs did not park"

    # Then the recipient gets one mail about it, through the sender, from its address
    first = wait_for(told.mail)
    assert len(first) == 1, first
    assert first[0]["subject"] == (f"[BSS] Instance {slug_of(told)}/main needs re-authentication")
    assert first[0]["sender"] == sender_address
    assert first[0]["via"] == ("gmail_api" if mode == SenderMode.GMAIL_API else "smtp")
    assert "Authenticate Instance" in first[0]["body"]
    assert f"{told.stack.web}/portal/instances/{told.tenant.instance_id}" in first[0]["body"]

    # And a reminder follows after the reminder interval while it is unresolved
    reminded = wait_for(lambda: len(told.mail()) >= 2, timeout=REMINDER_SECONDS * 4)
    assert reminded, told.mail()
    assert told.mail()[1]["subject"].startswith("[BSS] Reminder: Instance ")

    # When the distributor authenticates the instance again
    reauthenticate(told)

    # Then no mail about it is written after that, and none arrives
    time.sleep(REMINDER_SECONDS * 2.5)
    with session_scope(told.settings.database_url) as s:
        alert = s.exec(
            select(Alert).where(Alert.key == f"instance.needs_reauth:{told.tenant.instance_id}")
        ).one()
        assert alert.resolved_at is not None
        later = s.exec(
            select(MailMessage).where(
                MailMessage.alert_id == alert.id, col(MailMessage.created_at) > alert.resolved_at
            )
        ).all()
    assert later == []
    assert len(told.mail()) == alert.notified_count <= 3
    with session_scope(told.settings.database_url) as s:
        assert s.get(MailSender, sender_id).last_sent_at is not None


def test_a_dead_mailbox_token_is_refused_shown_and_reported_through_another_sender(
    told: Told,
) -> None:
    sandbox = told.stack.sandbox
    # Given the distributor's SMTP sender (its default), which has sent a test message...
    smtp_id, mailbox = sender_of_mode(told.settings, sandbox, told.tenant, SenderMode.SMTP_XOAUTH2)
    _, other_address = sender_of_mode(
        told.settings, sandbox, gmail_api_instance(told), SenderMode.GMAIL_API, is_default=False
    )
    send_test_message(told, smtp_id)
    assert wait_for(told.mail) and told.mail()[0]["sender"] == mailbox

    # When the mailbox's owner revokes our access at Google, and the instance breaks
    sandbox_post(sandbox, "/_sandbox/revoke", {"client_id": told.tenant.client_id, "user": mailbox})
    sandbox_post(sandbox, "/_sandbox/revoke", {"token": refresh_token_of(told)})
    job = told.submit("customer.sync", {"customer": "broken.example"})
    assert wait_for(lambda: told.jobs_in([job], JobState.WAITING_REAUTH))

    # Then Gmail's SMTP refuses the mailbox's token in its words, shown on the sender...
    def failing() -> MailSender | None:
        with session_scope(told.settings.database_url) as s:
            sender = s.get(MailSender, smtp_id)
            return sender if sender and sender.status == SenderStatus.FAILING else None

    sender = wait_for(failing)
    assert sender is not None, "the SMTP sender was not marked failing"
    assert "535 5.7.8 Username and Password not accepted" in (sender.last_error or "")
    # ...the instance's alert still reaches the recipient, through the other sender, and so
    # does the report that the SMTP sender stopped working
    subjects = lambda: {m["subject"]: m["sender"] for m in told.mail()}  # noqa: E731
    assert wait_for(lambda: len(subjects()) >= 3), told.mail()
    got = subjects()
    reauth = f"[BSS] Instance {slug_of(told)}/main needs re-authentication"
    assert got[reauth] == other_address
    (report,) = [s for s in got if s.startswith(f"[BSS] Mail sender {sender.name} ")]
    assert got[report] == other_address


def test_two_hundred_failed_jobs_make_one_digest(told: Told) -> None:
    # Given a sender, and 200 jobs that Google refuses (customers it does not know)
    sender_of_mode(told.settings, told.stack.sandbox, told.tenant, SenderMode.SMTP_XOAUTH2)
    jobs = [told.submit("customer.sync", {"customer": f"nobody-{n}.example"}) for n in range(200)]

    # When they have all failed and the digest window ends
    assert wait_for(lambda: told.jobs_in(jobs, JobState.FAILED), timeout=DIGEST_SECONDS), (
        "the jobs did not all fail within the window"
    )
    digest = wait_for(told.mail, timeout=DIGEST_SECONDS + 20)

    # Then one mail counts all 200, lists the first ones, and links to the failed jobs
    assert len(digest) == 1, [m["subject"] for m in digest]
    assert digest[0]["subject"].endswith(": 200")
    body = digest[0]["body"]
    assert body.startswith("200 jobs failed between ")
    assert "Google has no customer nobody-" in body and "... and 180 more." in body
    assert f"/dashboard/jobs?state=failed&distributor={told.tenant.distributor_id}" in body
    time.sleep(3)
    assert len(told.mail()) == 1
