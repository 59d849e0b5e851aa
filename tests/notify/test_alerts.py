"""Alerts and digests: told once, reminded while they last, closed when they clear; a storm of
failures is one digest; each audience gets one mail; the instance wing's hooks open and close
the re-authentication alert."""

from __future__ import annotations

import uuid
from datetime import timedelta

import pytest
import requests
from sqlmodel import col, select

from bss.accounts import create_distributor, create_user
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import GoogleAuthorizationError
from bss.events.drift_rows import open_drift
from bss.instances import mark_needs_reauth, set_enabled, store_oauth_grant
from bss.models import (
    Alert,
    DesiredSubscription,
    Distributor,
    Instance,
    InstanceStatus,
    MailMessage,
    MailSender,
    NotifyTopic,
    SenderMode,
    UserRole,
    utcnow,
)
from bss.notify import (
    add_to_digest,
    configure_webhook,
    deliver,
    notify_due,
    open_alert,
    record_event,
    resolve_alert,
)
from tests.support.mail import add_recipient, add_sender

DEAD_GRANT = GoogleAuthorizationError(
    "Token has been expired or revoked.", reason="invalid_grant", status=400
)


@pytest.fixture
def told(settings, tenant):
    """Given a distributor whose ops address is told everything, and what the scheduler sent."""
    add_recipient(
        settings,
        distributor_id=tenant.id,
        address="ops@dist.example",
        topics=[t.value for t in NotifyTopic if t != NotifyTopic.TEST],
    )
    return []


def mail_of(settings, distributor_id):
    with session_scope(settings.database_url) as s:
        return list(
            s.exec(
                select(MailMessage)
                .where(MailMessage.distributor_id == distributor_id)
                .order_by(col(MailMessage.created_at))
            ).all()
        )


def instance_of(settings, tenant) -> Instance:
    with session_scope(settings.database_url) as s:
        return s.exec(select(Instance).where(Instance.distributor_id == tenant.id)).one()


def test_an_alert_is_mailed_once_then_reminded_until_resolved(settings, tenant, told):
    # Given an alert opened, and seen again while it is open
    key = f"webhooks.failing:{tenant.id}"
    with session_scope(settings.database_url) as s:
        for _ in range(3):
            open_alert(
                s,
                key=key,
                topic=NotifyTopic.WEBHOOKS_FAILING,
                distributor_id=tenant.id,
                title="Webhook deliveries are failing",
                details={"what": "Billing does not answer.", "todo": "Fix it.", "path": "/x"},
            )
    # When the scheduler runs twice
    now = utcnow()
    notify_due(settings, told.append, now=now)
    notify_due(settings, told.append, now=now + timedelta(seconds=1))

    # Then one alert, counted three times, and one mail about it
    with session_scope(settings.database_url) as s:
        (alert,) = s.exec(select(Alert).where(Alert.key == key)).all()
        assert alert.count == 3 and alert.notified_count == 1
    (first,) = mail_of(settings, tenant.id)
    assert told.count(first.id) == 1
    assert first.recipients == ["ops@dist.example"]
    assert first.subject == "[BSS] Webhook deliveries are failing"
    assert "Billing does not answer." in first.body and "What to do: Fix it." in first.body
    assert "seen 3 times" in first.body and "http://127.0.0.1:8000/x" in first.body

    # When the reminder interval passes: a reminder
    later = now + timedelta(seconds=settings.alert_reminder_seconds + 1)
    notify_due(settings, told.append, now=later)
    subjects = [m.subject for m in mail_of(settings, tenant.id)]
    assert subjects == [first.subject, "[BSS] Reminder: Webhook deliveries are failing"]

    # When it is resolved: no reminder any more
    with session_scope(settings.database_url) as s:
        assert resolve_alert(s, key) == 1
    notify_due(settings, told.append, now=later + timedelta(days=3))
    assert len(mail_of(settings, tenant.id)) == 2


def test_a_storm_of_failures_is_one_digest_at_the_window_end(settings, tenant, told):
    # Given 1,000 jobs failing within the digest window
    with session_scope(settings.database_url) as s:
        for n in range(1000):
            add_to_digest(
                s,
                topic=NotifyTopic.JOBS_FAILED,
                distributor_id=tenant.id,
                title=f"Jobs failed at {tenant.name}",
                line=f"job_{n:04d} order.create: Google refused",
            )
    # When the scheduler runs before the window ends: nothing is sent
    notify_due(settings, told.append)
    assert mail_of(settings, tenant.id) == []

    # When it runs after the window: one mail, with the count, the first lines and the link
    end = utcnow() + timedelta(seconds=settings.failed_jobs_digest_seconds + 1)
    notify_due(settings, told.append, now=end)
    notify_due(settings, told.append, now=end + timedelta(hours=5))
    (digest,) = mail_of(settings, tenant.id)
    assert digest.subject == f"[BSS] Jobs failed at {tenant.name}: 1000"
    assert digest.body.startswith("1000 jobs failed between ")
    assert "  - job_0000 order.create: Google refused" in digest.body
    assert "  - job_0019 order.create" in digest.body and "job_0020" not in digest.body
    assert "... and 980 more." in digest.body
    assert f"/dashboard/jobs?state=failed&distributor={tenant.id}" in digest.body

    # And the next failure opens a new digest
    with session_scope(settings.database_url) as s:
        again = add_to_digest(
            s,
            topic=NotifyTopic.JOBS_FAILED,
            distributor_id=tenant.id,
            title="Jobs failed",
            line="job_x",
        )
        assert again.count == 1


def test_each_audience_gets_one_mail_and_nobody_gets_two(settings, tenant):
    # Given the distributor's admins, another distributor's admin, a disabled admin, operators
    tag = uuid.uuid4().hex[:6]
    with session_scope(settings.database_url) as s:
        other = create_distributor(s, name=f"Other {tag}")
        d = s.get(Distributor, tenant.id)
        create_user(
            s, email=f"ann-{tag}@dist.example", role=UserRole.DISTRIBUTOR_ADMIN, distributor=d
        )
        create_user(
            s, email=f"bob-{tag}@dist.example", role=UserRole.DISTRIBUTOR_ADMIN, distributor=d
        )
        gone = create_user(
            s, email=f"gone-{tag}@dist.example", role=UserRole.DISTRIBUTOR_ADMIN, distributor=d
        )
        gone.disabled_at = utcnow()
        create_user(
            s, email=f"eve-{tag}@other.example", role=UserRole.DISTRIBUTOR_ADMIN, distributor=other
        )
        create_user(s, email=f"op-{tag}@platform.example", role=UserRole.OPERATOR)
    topic = NotifyTopic.INSTANCE_NEEDS_REAUTH
    # ...the distributor's admins and ann once more by address, the operators, and ann again
    add_recipient(settings, distributor_id=tenant.id, topics=[topic], all_admins=True)
    add_recipient(
        settings, distributor_id=tenant.id, topics=[topic], address=f"ANN-{tag}@dist.example"
    )
    add_recipient(settings, distributor_id=None, topics=[topic], all_admins=True)
    add_recipient(settings, distributor_id=None, topics=[topic], address=f"ann-{tag}@dist.example")

    # When an instance of the distributor needs re-authentication
    with session_scope(settings.database_url) as s:
        open_alert(
            s,
            key=f"test.audience:{tag}",
            topic=topic,
            distributor_id=tenant.id,
            title="Instance needs re-authentication",
            details={},
        )
    sent: list[str] = []
    notify_due(settings, sent.append)

    # Then the distributor's mail goes to its enabled admins, each once...
    (own,) = mail_of(settings, tenant.id)
    assert sorted(a.lower() for a in own.recipients) == [
        f"ann-{tag}@dist.example",
        f"bob-{tag}@dist.example",
    ]
    # ...and the platform's to the operators, not to ann again
    with session_scope(settings.database_url) as s:
        (platform,) = s.exec(
            select(MailMessage).where(MailMessage.id.in_(sent), MailMessage.distributor_id == None)  # noqa: E711
        ).all()
    assert [a for a in platform.recipients if tag in a] == [f"op-{tag}@platform.example"]
    assert "/dashboard/mail" in platform.body and "/portal/notifications" in own.body


def test_many_failing_jobs_open_one_reauth_alert_and_re_authenticating_closes_it(
    settings, tenant, told
):
    instance = instance_of(settings, tenant)
    # Given several jobs finding the instance's grant dead
    for _ in range(5):
        with session_scope(settings.database_url) as s:
            mark_needs_reauth(s, instance.id, DEAD_GRANT)
    notify_due(settings, told.append)

    # Then one alert, one mail, naming the instance and what to do
    key = f"instance.needs_reauth:{instance.id}"
    with session_scope(settings.database_url) as s:
        assert len(s.exec(select(Alert).where(Alert.key == key)).all()) == 1
        assert s.get(Instance, instance.id).status == InstanceStatus.NEEDS_REAUTH
    (mail,) = mail_of(settings, tenant.id)
    assert mail.subject == f"[BSS] Instance {tenant.slug}/main needs re-authentication"
    assert "Authenticate Instance" in mail.body and "expired or revoked" in mail.body
    assert f"/portal/instances/{instance.id}" in mail.body

    # When it is authenticated again: the alert closes, and no reminder follows
    with session_scope(settings.database_url) as s:
        store_oauth_grant(
            s,
            s.get(Instance, instance.id),
            vault=vault_from_settings(settings),
            refresh_token="1//new",
            scopes=["openid"],
            authenticated_as="admin@dist.example",
        )
    with session_scope(settings.database_url) as s:
        assert s.exec(select(Alert).where(Alert.key == key)).one().resolved_at is not None
    notify_due(settings, told.append, now=utcnow() + timedelta(days=2))
    assert len(mail_of(settings, tenant.id)) == 1

    # And when it fails again later, it is told again (a new alert)
    with session_scope(settings.database_url) as s:
        mark_needs_reauth(s, instance.id, DEAD_GRANT)
    notify_due(settings, told.append)
    assert len(mail_of(settings, tenant.id)) == 2


def test_enabling_a_disabled_instance_closes_its_alert(settings, tenant, told):
    instance = instance_of(settings, tenant)
    with session_scope(settings.database_url) as s:
        mark_needs_reauth(s, instance.id, DEAD_GRANT)
        row = s.get(Instance, instance.id)
        set_enabled(s, row, enabled=False)
    with session_scope(settings.database_url) as s:
        set_enabled(s, s.get(Instance, instance.id), enabled=True)
    with session_scope(settings.database_url) as s:
        alert = s.exec(
            select(Alert).where(Alert.key == f"instance.needs_reauth:{instance.id}")
        ).one()
        assert alert.resolved_at is not None


def test_a_refresh_token_about_to_end_is_warned_once_until_a_new_consent(settings, tenant, told):
    # Given an instance whose refresh token ends within the warning time (Testing: 7 days)
    instance = instance_of(settings, tenant)
    with session_scope(settings.database_url) as s:
        row = s.get(Instance, instance.id)
        row.refresh_token_expires_at = utcnow() + timedelta(days=1)
        s.add(row)
    # When the scheduler runs, twice
    first = notify_due(settings, told.append)
    notify_due(settings, told.append)

    # Then one warning, told once (no reminders for this topic)
    assert first.warned == [f"instance.token_expiring:{instance.id}"]
    (mail,) = mail_of(settings, tenant.id)
    assert "authorization of instance" in mail.subject and "Authenticate Instance" in mail.body
    notify_due(settings, told.append, now=utcnow() + timedelta(days=2, seconds=5))
    assert len(mail_of(settings, tenant.id)) == 1

    # When it is authenticated again with a new token: the warning closes
    with session_scope(settings.database_url) as s:
        store_oauth_grant(
            s,
            s.get(Instance, instance.id),
            vault=vault_from_settings(settings),
            refresh_token="1//newer",
            scopes=["openid"],
            authenticated_as="admin@dist.example",
        )
    with session_scope(settings.database_url) as s:
        warning = s.exec(
            select(Alert).where(Alert.key == f"instance.token_expiring:{instance.id}")
        ).one()
        assert warning.resolved_at is not None


def test_two_alerts_opened_at_once_are_told_as_one(settings, tenant, told):
    # Given two transactions that each found no open alert and opened one
    key = f"webhooks.failing:{tenant.id}"
    with session_scope(settings.database_url) as s:
        for _ in range(2):
            s.add(
                Alert(
                    key=key,
                    topic=NotifyTopic.WEBHOOKS_FAILING,
                    distributor_id=tenant.id,
                    title="Webhooks failing",
                    next_notify_at=utcnow(),
                )
            )
            s.flush()
    # When the scheduler runs: one mail, and one alert left open counting both
    notify_due(settings, told.append)
    assert len(mail_of(settings, tenant.id)) == 1
    with session_scope(settings.database_url) as s:
        (still,) = s.exec(select(Alert).where(Alert.key == key, Alert.resolved_at == None)).all()  # noqa: E711
        assert still.count == 2


def test_mail_whose_message_was_lost_is_sent_again(settings, tenant, told):
    # Given an alert mailed, whose message never reached a worker
    with session_scope(settings.database_url) as s:
        open_alert(
            s,
            key=f"lost:{tenant.id}",
            topic=NotifyTopic.WEBHOOKS_FAILING,
            distributor_id=tenant.id,
            title="Lost",
            details={},
        )
    lost: list[str] = []
    notify_due(settings, lost.append)
    assert len(lost) == 1
    # When the scheduler looks after the resend time: it is sent again, once
    later = utcnow() + timedelta(seconds=settings.resend_after_seconds + 1)
    again = notify_due(settings, told.append, now=later)
    assert lost[0] in again.resent and told.count(lost[0]) == 1
    assert lost[0] not in notify_due(settings, told.append, now=later).resent


def test_a_given_up_webhook_opens_an_alert_and_the_next_delivered_closes_it(settings, tenant):
    # Given a distributor's webhook whose receiver is down, and one attempt per delivery
    settings = settings.model_copy(update={"webhook_max_attempts": 1})
    vault = vault_from_settings(settings)

    def public_dns(host):
        return ["93.184.215.14"]

    def answer(status):
        def post(url, data, headers, address, **_kw):  # the edge of the system
            resp = requests.Response()
            resp.status_code = status
            return resp

        return post

    with session_scope(settings.database_url) as s:
        configure_webhook(
            s,
            settings=settings,
            distributor=s.get(Distributor, tenant.id),
            vault=vault,
            url="https://billing.example/hook",
            resolve=public_dns,
        )
        first = record_event(s, distributor_id=tenant.id, event="job.failed", data={}).id
    key = f"webhooks.failing:{tenant.id}"

    # When a delivery is given up: the alert is open, saying what failed
    deliver(settings, vault, first, resend=lambda *_: None, post=answer(503), resolve=public_dns)
    with session_scope(settings.database_url) as s:
        alert = s.exec(select(Alert).where(Alert.key == key)).one()
        assert alert.resolved_at is None and "HTTP 503" in alert.details["facts"]["Last answer"]
        second = record_event(s, distributor_id=tenant.id, event="job.failed", data={}).id

    # When the next one is delivered: it closes
    deliver(settings, vault, second, resend=lambda *_: None, post=answer(204), resolve=public_dns)
    with session_scope(settings.database_url) as s:
        assert s.exec(select(Alert).where(Alert.key == key)).one().resolved_at is not None


def test_new_drift_is_counted_in_one_digest_and_a_moved_one_is_not_counted_again(
    settings, tenant, told
):
    # Given what billing ordered for two customers, and Google holding other seat counts
    instance = instance_of(settings, tenant)
    with session_scope(settings.database_url) as s:
        rows = {}
        for customer in ("C01", "C02"):
            desired = DesiredSubscription(
                instance_id=instance.id, customer_id=customer, sku_id="1010020027", seats=5
            )
            s.add(desired)
            rows[customer], _ = open_drift(
                s,
                None,
                instance=instance,
                desired=desired,
                field="seats",
                want=5,
                have=7,
                domain=f"{customer.lower()}.example",
                subscription_id=None,
                detected_by="event",
                event_id=None,
            )
        # ...and Google moving one of them again (the same difference, a new value)
        open_drift(
            s,
            rows["C01"],
            instance=instance,
            desired=desired,
            field="seats",
            want=5,
            have=9,
            domain="c01.example",
            subscription_id=None,
            detected_by="event",
            event_id=None,
        )
    # When the digest window ends: one mail counting the two differences
    notify_due(settings, told.append, now=utcnow() + timedelta(hours=2))
    (digest,) = [m for m in mail_of(settings, tenant.id) if m.topic == NotifyTopic.DRIFT_FOUND]
    assert digest.subject == f"[BSS] Drift found at {tenant.name}: 2"
    assert "c01.example 1010020027 seats: billing ordered 5, Google has 7" in digest.body
    assert "Accept Google's value" in digest.body


def test_a_mailbox_whose_consent_ends_soon_is_warned_of(settings, tenant, told):
    # Given an SMTP sender whose mailbox's refresh token ends tomorrow (a Testing consent screen)
    sender_id = add_sender(
        settings,
        distributor_id=tenant.id,
        mode=SenderMode.SMTP_XOAUTH2,
        from_address="alerts@dist.example",
        refresh_token="1//mailbox",
    )
    with session_scope(settings.database_url) as s:
        sender = s.get(MailSender, sender_id)
        sender.refresh_token_expires_at = utcnow() + timedelta(days=1)
        s.add(sender)
    # When the scheduler runs: the distributor is told once, with what to do
    tick = notify_due(settings, told.append)
    assert f"sender.token_expiring:{sender_id}" in tick.warned
    (mail,) = [m for m in mail_of(settings, tenant.id) if "alerts@dist.example" in m.body]
    assert mail.subject.startswith(f"[BSS] The authorization of mail sender {sender.name} ends ")
    assert "Authenticate mailbox" in mail.body and "/portal/notifications" in mail.body
    assert f"sender.token_expiring:{sender_id}" not in notify_due(settings, told.append).warned
