"""Who is told what, on the Notifications page: an address or all admins, subscribed to topics;
each change on the audit log; another distributor's recipients out of reach; the platform's
managed by operators on Mail."""

from __future__ import annotations

import pytest
from sqlmodel import select

from bss.db import session_scope
from bss.errors import ValidationFailed
from bss.models import AuditEntry, NotificationRecipient, NotifyTopic
from bss.notify import TOPICS, add_recipient, owners_recipients
from tests.support.notifications import flashes, forms_of, page_of, post_and_read
from tests.support.portal import Portal, make_account


def recipients_of(database_url: str, distributor_id: int | None) -> list[NotificationRecipient]:
    with session_scope(database_url) as s:
        found = owners_recipients(s, distributor_id)
        for r in found:
            s.expunge(r)
        return found


def add(portal: Portal, distributor_id: int | None, topics: list[str], **fields) -> str:
    data = {**fields, "topics": topics}
    resp = portal.post(forms_of(distributor_id) + "/recipients", data)
    assert resp.status_code == 302, resp.text
    return portal.get(resp.location).text


def errors(page: str) -> list[str]:
    return [text for kind, text in flashes(page) if kind == "error"]


def test_an_admin_adds_an_address_and_all_admins_with_topics(portal, account, database_url):
    d = account.distributor_id
    # When the admin adds an address for two topics, and all admins for another
    page = add(
        portal,
        d,
        [NotifyTopic.INSTANCE_NEEDS_REAUTH, NotifyTopic.JOBS_FAILED],
        address=" Ops@Example.COM ",
    )
    assert not errors(page), flashes(page)
    page = add(portal, d, [NotifyTopic.WEBHOOKS_FAILING], all_admins="y")
    # Then both are listed with their topics, all admins first
    listed = recipients_of(database_url, d)
    assert [(r.address, r.all_admins, r.topics) for r in listed] == [
        (None, True, ["webhooks.failing"]),
        ("ops@example.com", False, ["instance.needs_reauth", "jobs.failed"]),
    ]
    assert "ops@example.com" in page and "All distributor admins" in page
    # And each change is on the audit log
    page = post_and_read(portal, d, f"/recipients/{listed[1].id}/remove", {})
    assert "ops@example.com will not be told anything more." in page
    assert [r.address for r in recipients_of(database_url, d)] == [None]
    with session_scope(database_url) as s:
        actions = [
            (e.action, e.target)
            for e in s.exec(select(AuditEntry).where(AuditEntry.distributor_id == d)).all()
        ]
    assert actions == [
        ("notification_recipient.add", "recipient ops@example.com"),
        ("notification_recipient.add", "recipient all distributor admins"),
        ("notification_recipient.remove", "recipient ops@example.com"),
    ]


def test_every_topic_is_offered_but_the_test_message(portal, account):
    page = portal.get(page_of(account.distributor_id)).text
    for topic in TOPICS:
        assert f'value="{topic}"' in page
    assert 'value="test"' not in page
    assert NotifyTopic.TEST not in TOPICS and NotifyTopic.SENDER_FAILING in TOPICS


@pytest.mark.parametrize(
    ("fields", "topics", "said"),
    [
        ({}, ["jobs.failed"], "Address: required (or choose all distributor admins)."),
        ({"address": "a@b.example", "all_admins": "y"}, ["jobs.failed"], "not both"),
        ({"address": "not-an-address"}, ["jobs.failed"], "Address: "),
        ({"address": "a@b.example"}, [], "Topics: choose at least one topic."),
        ({"address": "a@b.example"}, ["test"], "Topics: unknown topic(s): test."),
    ],
)
def test_a_bad_recipient_is_refused_with_why_and_nothing_changes(
    portal, account, database_url, fields, topics, said
):
    page = add(portal, account.distributor_id, topics, **fields)
    assert any(said in e for e in errors(page)), flashes(page)
    assert recipients_of(database_url, account.distributor_id) == []
    # And what was typed is still in the form
    if fields.get("address"):
        assert f'value="{fields["address"]}"' in page


def test_an_address_is_listed_once_per_distributor(portal, account, database_url):
    d = account.distributor_id
    add(portal, d, ["jobs.failed"], address="ops@example.com")
    page = add(portal, d, ["drift.found"], address="OPS@example.com")
    assert any("ops@example.com is a recipient already" in e for e in errors(page))
    add(portal, d, ["jobs.failed"], all_admins="y")
    page = add(portal, d, ["jobs.failed"], all_admins="y")
    assert any("all distributor admins is a recipient already" in e for e in errors(page))
    assert len(recipients_of(database_url, d)) == 2
    # Another distributor may list the same address
    with session_scope(database_url) as s:
        other = make_account(database_url)
        add_recipient(
            s,
            distributor_id=other.distributor_id,
            address="ops@example.com",
            topics=["jobs.failed"],
        )


def test_another_distributors_notifications_are_a_404_on_every_route(
    app, portal, account, database_url
):
    # Given distributor A's recipient
    add(portal, account.distributor_id, ["jobs.failed"], address="secret-ops@a.example")
    [recipient] = recipients_of(database_url, account.distributor_id)
    # When an admin of distributor B tries every route of A's Notifications page
    b = make_account(database_url)
    other = Portal(app.test_client()).sign_in(b)
    token = other.token()
    rules = sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if "/notifications" in rule.rule and "<int:distributor_id>" in rule.rule
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    )
    assert len(rules) >= 10, rules
    for method, rule in rules:
        path = (
            rule.replace("<int:distributor_id>", str(account.distributor_id))
            .replace("<int:recipient_id>", str(recipient.id))
            .replace("<int:sender_id>", "1")
        )
        data = {"csrf_token": token, "address": "x@y.example", "topics": ["jobs.failed"]}
        resp = other.client.open(path, method=method, data=data if method == "POST" else None)
        # Then each is a 404, as for a distributor that does not exist
        assert resp.status_code == 404, (method, rule, resp.status_code)
        assert "secret-ops@a.example" not in resp.text
    # And nothing changed
    assert [r.address for r in recipients_of(database_url, account.distributor_id)] == [
        "secret-ops@a.example"
    ]
    # And B's own removal route cannot reach A's recipient either
    resp = other.post(f"{forms_of(b.distributor_id)}/recipients/{recipient.id}/remove")
    assert resp.status_code == 404


def test_operators_manage_the_platforms_recipients_on_mail(app, account, database_url):
    operator = Portal(app.test_client()).sign_in(make_account(database_url, role="operator"))
    page = add(operator, None, ["sender.failing", "jobs.failed"], address="noc@platform.example")
    assert not errors(page), flashes(page)
    page = add(operator, None, ["instance.needs_reauth"], all_admins="y")
    assert "All operators" in page and "noc@platform.example" in page
    listed = recipients_of(database_url, None)
    assert {(r.address, r.all_admins) for r in listed} >= {
        ("noc@platform.example", False),
        (None, True),
    }
    # A distributor's admin neither sees nor changes them
    admin = Portal(app.test_client()).sign_in(account)
    assert "noc@platform.example" not in admin.get("/dashboard/mail").text
    noc = next(r for r in listed if r.address == "noc@platform.example")
    assert admin.post(f"/dashboard/mail/platform/recipients/{noc.id}/remove").status_code == 404
    resp = admin.post("/dashboard/mail/platform/recipients", {"address": "me@x.example"})
    assert resp.status_code == 404
    assert len(recipients_of(database_url, None)) == len(listed)


def test_the_core_refuses_the_same_things(settings, tenant):
    with session_scope(settings.database_url) as s:
        with pytest.raises(ValidationFailed) as refused:
            add_recipient(s, distributor_id=tenant.id, address="", topics=[])
        fields = [d["field"] for d in refused.value.details]
        assert fields == ["address", "topics"]  # every problem at once
