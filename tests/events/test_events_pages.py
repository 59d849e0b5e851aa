"""The dashboard's Google events and Drift pages and the instance page's notifications card,
in-process against a real SQLite: what each role sees, Accept and Restore with the audit log."""

from __future__ import annotations

import uuid

from sqlmodel import select

from bss.db import session_scope
from bss.models import AuditEntry, Drift, GoogleEvent, Instance, Job, utcnow
from tests.support.dashboard import signed_in
from tests.support.google_events import drifted_customer
from tests.support.portal_pages import csrf_of


def _set(database_url: str, instance_id: int, **values) -> None:
    with session_scope(database_url) as s:
        instance = s.get(Instance, instance_id)
        for key, value in values.items():
            setattr(instance, key, value)
        s.add(instance)


def _event(database_url: str, instance_id: int, event_type: str, **payload) -> str:
    message_id = f"msg-{uuid.uuid4().hex}"
    with session_scope(database_url) as s:
        instance = s.get(Instance, instance_id)
        s.add(
            GoogleEvent(
                message_id=message_id,
                instance_id=instance_id,
                distributor_id=instance.distributor_id,
                event_type=event_type,
                event_time=utcnow(),
                customer_domain=payload.get("customerDomain"),
                sku_id="1010020027",
                payload={"eventType": event_type, **payload},
                state="processed",
            )
        )
    return message_id


def _drift(database_url: str, drift_id: str) -> Drift:
    with session_scope(database_url) as s:
        row = s.get(Drift, drift_id)
        s.expunge(row)
        return row


def test_events_page_shows_each_instances_notifications_and_googles_payload(
    dashboard_app, world, database_url
):
    # Given A registered for push and told of a seat change; B registered, but the last
    # reconciliation found two changes no notification told us
    _set(database_url, world.a.instance_id, events_mode="push", events_registered_at=utcnow())
    message = _event(
        database_url, world.a.instance_id, "LICENSE_CAP_CHANGED", customerDomain="seen.example"
    )
    _set(
        database_url,
        world.b.instance_id,
        events_mode="pull",
        events_registered_at=utcnow(),
        last_reconciled_at=utcnow(),
        last_reconcile={"calls": 3, "missed": 2},
    )
    # When an operator opens Google events
    page = signed_in(dashboard_app, world.users["operator"]).get("/dashboard/events")
    assert page.status_code == 200
    # Then A's notification is there with Google's raw payload, and B is flagged silent
    assert message in page.text and "LICENSE_CAP_CHANGED" in page.text
    assert '"customerDomain": "seen.example"' in page.text
    assert f'data-instance-id="{world.b.instance_id}" data-state="silent"' in page.text
    assert "found 2 changes that no notification told us about" in page.text
    # And B's admin sees B only: not A's notification
    theirs = signed_in(dashboard_app, world.users["admin_b"]).get("/dashboard/events").text
    assert message not in theirs and f'data-instance-id="{world.a.instance_id}"' not in theirs
    # An instance they may not see is a 404, as if it did not exist
    other = signed_in(dashboard_app, world.users["admin_b"]).get(
        f"/dashboard/events?instance={world.a.instance_id}"
    )
    assert other.status_code == 404


def test_failing_and_unregistered_instances_say_so(dashboard_app, world, database_url):
    _set(
        database_url,
        world.a.instance_id,
        events_mode="push",
        events_error="resellernotify.register: Google refused (403 forbidden).",
    )
    page = signed_in(dashboard_app, world.users["operator"]).get("/dashboard/events/live").text
    assert f'data-instance-id="{world.a.instance_id}" data-state="failing"' in page
    assert "Google refused (403 forbidden)." in page
    assert f'data-instance-id="{world.b.instance_id}" data-state="off"' in page


def test_drift_page_shows_both_values_and_the_job_that_set_ours(dashboard_app, world, database_url):
    drifted = drifted_customer(database_url, world.a.instance_id, ordered=5, at_google=9)
    page = signed_in(dashboard_app, world.users["admin_a"]).get("/dashboard/drift")
    assert page.status_code == 200
    row = page.text.split(f'id="drift-{drifted.drift_id}"', 1)[1].split("</tr>", 1)[0]
    assert '<td class="value ours"><strong>5</strong>' in row
    assert '<td class="value google"><strong>9</strong>' in row
    assert f"/dashboard/jobs/{drifted.job_id}" in row  # the job that set billing's value
    assert f'id="accept-{drifted.drift_id}"' in row and f'id="restore-{drifted.drift_id}"' in row
    # B's admin does not see A's drift
    theirs = signed_in(dashboard_app, world.users["admin_b"]).get("/dashboard/drift").text
    assert drifted.drift_id not in theirs


def test_accept_resolves_the_drift_and_goes_on_the_audit_log(dashboard_app, world, database_url):
    drifted = drifted_customer(database_url, world.a.instance_id)
    admin = signed_in(dashboard_app, world.users["admin_a"])
    page = admin.get("/dashboard/drift")
    resp = admin.client.post(
        f"/dashboard/drift/{drifted.drift_id}/resolve",
        data={"csrf_token": csrf_of(page.text), "action": "accept"},
    )
    assert resp.status_code == 302
    row = _drift(database_url, drifted.drift_id)
    assert (row.state, row.resolution, row.resolved_by) == (
        "resolved",
        "accepted",
        world.users["admin_a"].email,
    )
    after = admin.get(resp.location).text
    assert "is accepted" in after and drifted.drift_id not in after.split('id="drift-table"')[1]
    with session_scope(database_url) as s:
        entry = s.exec(
            select(AuditEntry).where(
                AuditEntry.action == "drift.accept",
                AuditEntry.target == f"drift {drifted.drift_id}",
            )
        ).one()
        assert entry.actor == world.users["admin_a"].email
        assert entry.details["desired"] == 5 and entry.details["actual"] == 9


def test_restore_submits_a_job_and_sends_it(dashboard_app, world, database_url, sent):
    drifted = drifted_customer(database_url, world.a.instance_id)
    operator = signed_in(dashboard_app, world.users["operator"])
    page = operator.get("/dashboard/drift")
    resp = operator.client.post(
        f"/dashboard/drift/{drifted.drift_id}/resolve",
        data={"csrf_token": csrf_of(page.text), "action": "restore"},
    )
    assert resp.status_code == 302
    row = _drift(database_url, drifted.drift_id)
    assert row.resolution == "restored" and row.resolution_job_id
    assert row.resolution_job_id in sent  # (dispatch may release the distributor's held jobs)
    with session_scope(database_url) as s:
        job = s.get(Job, row.resolution_job_id)
        assert job.operation == "subscription.change_seats" and job.params["seats"] == 5


def test_viewers_and_other_distributors_cannot_resolve(dashboard_app, world, database_url, sent):
    drifted = drifted_customer(database_url, world.a.instance_id)
    for user, status in (("viewer", 403), ("admin_b", 404)):
        who = signed_in(dashboard_app, world.users[user])
        page = who.get("/dashboard/drift")
        resp = who.client.post(
            f"/dashboard/drift/{drifted.drift_id}/resolve",
            data={"csrf_token": csrf_of(page.text), "action": "accept"},
        )
        assert resp.status_code == status, user
    assert _drift(database_url, drifted.drift_id).state == "open" and sent == []


def test_a_drift_that_cannot_be_restored_says_why_and_stays_open(
    dashboard_app, world, database_url, sent
):
    drifted = drifted_customer(database_url, world.a.instance_id)
    with session_scope(database_url) as s:
        row = s.get(Drift, drifted.drift_id)
        row.field, row.desired, row.actual = "customer", "active", "transferred_away"
        s.add(row)
    operator = signed_in(dashboard_app, world.users["operator"])
    page = operator.get("/dashboard/drift")
    resp = operator.client.post(
        f"/dashboard/drift/{drifted.drift_id}/resolve",
        data={"csrf_token": csrf_of(page.text), "action": "restore"},
        follow_redirects=True,
    )
    assert "Not resolved:" in resp.text and "transferred away" in resp.text
    assert _drift(database_url, drifted.drift_id).state == "open" and sent == []


def test_the_header_links_to_drift_and_its_tabs_to_events(dashboard_app, world):
    operator = signed_in(dashboard_app, world.users["operator"])
    for path, current in (("/dashboard/drift", "tab-drift"), ("/dashboard/events", "tab-events")):
        page = operator.get(path).text
        # The header's one link stays current on both pages; the tabs say which one this is
        link = page[page.index('id="nav-drift"') :].split(">", 1)[0]
        assert 'href="/dashboard/drift"' in link and 'aria-current="page"' in link, path
        assert 'id="tab-drift" href="/dashboard/drift"' in page
        assert 'id="tab-events" href="/dashboard/events"' in page
        assert f'id="{current}" href="{path}" aria-current="page"' in page
