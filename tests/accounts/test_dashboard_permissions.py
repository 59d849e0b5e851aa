"""Who may see and do what, on every dashboard route, for every role.

The table below names each route's kind; a route the table does not know fails the test, so a new
page cannot ship without its permissions being decided here.
"""

from __future__ import annotations

import re

import pytest

from bss.db import session_scope
from bss.models import Instance, Job
from tests.support.dashboard import World, signed_in

ROLES = ("anonymous", "operator", "admin_a", "admin_b", "viewer", "viewer_b")

# endpoint -> kind
KINDS = {
    "dashboard_overview.overview": "page",
    "dashboard_overview.overview_live": "page",
    "dashboard_jobs.jobs": "page",
    "dashboard_jobs.jobs_rows": "page",
    "dashboard_instances.instances": "page",
    "dashboard_instances.instances_live": "page",
    "dashboard_audit.audit_log": "page",
    "dashboard_audit.audit_live": "page",
    "dashboard_job.job": "job_page",
    "dashboard_job.job_live": "job_page",
    "dashboard_job.retry": "job_action",
    "dashboard_job.cancel": "job_action",
    "dashboard_jobs.bulk_confirm": "bulk_confirm",
    "dashboard_jobs.bulk_run": "bulk_run",
    "dashboard_events.events": "page",
    "dashboard_events.events_live": "page",
    "dashboard_drift.drift": "page",
    "dashboard_drift.drift_live": "page",
    # Accept / Restore: as a job's buttons (another distributor's drift looks missing)
    "dashboard_drift.resolve": "job_action",
    "dashboard_mail.mail": "page",
    "dashboard_mail.mail_live": "page",
    "dashboard_mail.distributor_mail": "distributor_page",
    # The platform's own senders and recipients: operators only
    "dashboard_mail.add_recipient": "platform_action",
    "dashboard_mail.remove_recipient": "platform_action",
    "dashboard_mail.add_sender": "platform_action",
    "dashboard_mail.authenticate": "platform_action",
    "dashboard_mail.make_default": "platform_action",
    "dashboard_mail.refresh": "platform_action",
    "dashboard_mail.send_test": "platform_action",
    "dashboard_mail.remove_sender": "platform_action",
    "dashboard_mail.edit_sender": "platform_page",
    "dashboard_mail.save_sender": "platform_save",
}

# (kind, role) -> HTTP status. Distributor A owns the job and instance every route names.
# admin_b and viewer_b belong to distributor B; "viewer" is a viewer of every distributor.
EXPECTED = {
    "page": {"operator": 200, "admin_a": 200, "admin_b": 200, "viewer": 200, "viewer_b": 200},
    "job_page": {"operator": 200, "admin_a": 200, "admin_b": 404, "viewer": 200, "viewer_b": 404},
    "job_action": {
        "operator": 302,
        "admin_a": 302,
        "admin_b": 404,
        "viewer": 403,
        # a viewer's post is refused before any lookup: whether the job exists is not revealed
        "viewer_b": 403,
    },
    "bulk_confirm": {
        "operator": 200,
        "admin_a": 200,
        "admin_b": 404,
        "viewer": 403,
        "viewer_b": 403,
    },
    "bulk_run": {"operator": 302, "admin_a": 302, "admin_b": 404, "viewer": 403, "viewer_b": 403},
    # A page of distributor A's
    "distributor_page": {
        "operator": 200,
        "admin_a": 200,
        "admin_b": 404,
        "viewer": 200,
        "viewer_b": 404,
    },
    # What only operators see: the platform's (a distributor's admin cannot tell it exists)
    "platform_page": {
        "operator": 200,
        "admin_a": 404,
        "admin_b": 404,
        "viewer": 404,
        "viewer_b": 404,
    },
    # What only operators change: the platform's (a distributor's admin cannot tell it exists)
    "platform_action": {
        "operator": 302,
        "admin_a": 404,
        "admin_b": 404,
        "viewer": 403,
        "viewer_b": 403,
    },
    # The platform sender's Edit form, saved: the world's sender has no key yet, so an operator's
    # save is refused with its page again (422) until one is uploaded
    "platform_save": {
        "operator": 422,
        "admin_a": 404,
        "admin_b": 404,
        "viewer": 403,
        "viewer_b": 403,
    },
}


def dashboard_routes(dashboard_app) -> list[tuple[str, str, str]]:
    """Every (method, rule, endpoint) under /dashboard; removals last, since they delete what
    the other routes name."""
    return sorted(
        (
            (method, rule.rule, rule.endpoint)
            for rule in dashboard_app.url_map.iter_rules()
            if rule.rule.startswith("/dashboard")
            for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
        ),
        key=lambda r: (r[1].endswith("/remove"), r),
    )


def job_snapshot(database_url: str, job_id: str) -> dict:
    with session_scope(database_url) as s:
        job = s.get(Job, job_id)
        assert job is not None
        return job.model_dump()


def secrets_of(world: World, side: str) -> list[str]:
    """What of distributor `side` another distributor must never see."""
    s = getattr(world, side)
    return [s.distributor_name, s.instance_name, s.failed_job, s.queued_job]


def test_every_dashboard_route_has_its_permissions_decided(dashboard_app):
    unknown = [r for r in dashboard_routes(dashboard_app) if r[2] not in KINDS]
    assert unknown == []
    assert len(dashboard_routes(dashboard_app)) == len(KINDS)


@pytest.mark.parametrize("role", ROLES)
def test_each_role_on_every_route(dashboard_app, world, database_url, role):
    # Given distributor A's failed job and instance, and a user of `role`
    client = (
        signed_in(dashboard_app, world.users[role]).client
        if role != "anonymous"
        else dashboard_app.test_client()
    )
    from tests.support.portal import Portal

    token = Portal(client).token()
    a = world.a
    for method, rule, endpoint in dashboard_routes(dashboard_app):
        kind = KINDS[endpoint]
        path = (
            rule.replace("<job_id>", a.failed_job)
            .replace("<drift_id>", a.drift)
            .replace("<int:distributor_id>", str(a.distributor_id))
            .replace("<int:sender_id>", str(world.platform_sender))
            .replace("<int:recipient_id>", str(world.platform_recipient))
        )
        query = {}
        if kind in ("bulk_confirm", "bulk_run"):
            query = {"action": "retry", "instance": str(a.instance_id)}
        before = job_snapshot(database_url, a.failed_job)
        # When they open it (or press its button, with a valid CSRF token)
        if method == "GET":
            resp = client.get(path, query_string=query)
        else:
            data = {"csrf_token": token, "as_of": "2999-01-01T00:00:00+00:00", **query}
            resp = client.post(path, data=data)
        # Then the answer is the one the table says
        if role == "anonymous":
            expected = 302 if method == "GET" else 401
            assert resp.status_code == expected, (role, method, rule, resp.status_code)
            if method == "GET":
                assert "/sign-in" in resp.location
        else:
            expected = EXPECTED[kind][role]
            assert resp.status_code == expected, (role, method, rule, resp.status_code)
        body = resp.get_data(as_text=True)
        # And a user outside A never sees anything of A, whatever the answer
        if role in ("admin_b", "viewer_b", "anonymous"):
            # (an answer may repeat the path asked for: the visitor's own words)
            for secret in (x for x in secrets_of(world, "a") if x not in path):
                assert secret not in body, (role, rule, secret)
        if role == "admin_a":
            for secret in secrets_of(world, "b"):
                assert secret not in body, (role, rule, secret)
        # And a refused action changes nothing
        if method == "POST" and resp.status_code in (401, 403, 404):
            assert job_snapshot(database_url, a.failed_job) == before, (role, rule)


def test_an_admin_cannot_filter_by_another_distributors_distributor_or_instance(
    dashboard_app, world
):
    admin_b = signed_in(dashboard_app, world.users["admin_b"])
    for query in ({"distributor": world.a.distributor_id}, {"instance": world.a.instance_id}):
        for path in ("/dashboard/jobs", "/dashboard/jobs/rows"):
            resp = admin_b.get(path, query_string=query)
            assert resp.status_code == 404, (path, query)
            assert world.a.instance_name not in resp.text


def test_viewers_see_their_scope_without_buttons(dashboard_app, world):
    # Given a viewer of everything and a viewer of B
    viewer = signed_in(dashboard_app, world.users["viewer"])
    viewer_b = signed_in(dashboard_app, world.users["viewer_b"])
    # When they open the jobs list and a failed job
    everything = viewer.get("/dashboard/jobs?state=failed").text
    only_b = viewer_b.get("/dashboard/jobs?state=failed").text
    page = viewer.get(f"/dashboard/jobs/{world.a.failed_job}").text
    # Then the first sees both distributors' jobs, the second only B's
    assert world.a.failed_job in everything and world.b.failed_job in everything
    assert world.b.failed_job in only_b and world.a.failed_job not in only_b
    # And neither is offered a button that changes anything
    for text in (everything, only_b, page):
        assert 'id="bulk-retry"' not in text and 'id="retry-job"' not in text
        assert 'id="read-only"' in text


def test_the_instances_page_shows_each_admin_their_own_instances(dashboard_app, world):
    admin_a = signed_in(dashboard_app, world.users["admin_a"]).get("/dashboard/instances").text
    operator = signed_in(dashboard_app, world.users["operator"]).get("/dashboard/instances").text
    assert world.a.instance_name in admin_a and world.b.instance_name not in admin_a
    assert world.a.instance_name in operator and world.b.instance_name in operator


def test_another_distributors_job_looks_exactly_like_a_job_that_does_not_exist(
    dashboard_app, world
):
    admin_b = signed_in(dashboard_app, world.users["admin_b"])
    theirs = admin_b.get(f"/dashboard/jobs/{world.a.failed_job}")
    missing = admin_b.get("/dashboard/jobs/job_doesnotexist")
    assert theirs.status_code == missing.status_code == 404
    # The sign-out form's CSRF token carries the second it was made: the two pages may straddle one
    assert _without_csrf(theirs.text.replace(world.a.failed_job, "job_doesnotexist")) == (
        _without_csrf(missing.text)
    )


def _without_csrf(page: str) -> str:
    return re.sub(r'(name="csrf_token" value=")[^"]*"', r'\1…"', page)


def test_a_viewer_cannot_change_anything_in_the_portal_either(dashboard_app, world, database_url):
    # Given a viewer of B, on B's instance (which the portal lets B's people manage)
    viewer_b = signed_in(dashboard_app, world.users["viewer_b"])
    token = viewer_b.token()
    with session_scope(database_url) as s:
        before = s.get(Instance, world.b.instance_id).model_dump()
    posts = sorted(
        rule.rule
        for rule in dashboard_app.url_map.iter_rules()
        if "POST" in (rule.methods or set()) and not rule.rule.startswith(("/api/", "/sign-"))
    )
    assert len(posts) >= 6, posts
    for rule in posts:
        path = rule.replace("<int:instance_id>", str(world.b.instance_id)).replace(
            "<job_id>", world.b.failed_job
        )
        data = {"csrf_token": token, "name": "renamed", "mode": "oauth", "client_id": "x"}
        # When they press any button or submit any form
        resp = viewer_b.client.post(path, data=data)
        # Then it is refused, and nothing changed
        assert resp.status_code in (403, 404), (rule, resp.status_code)
    with session_scope(database_url) as s:
        assert s.get(Instance, world.b.instance_id).model_dump() == before
    assert job_snapshot(database_url, world.b.failed_job)["state"] == "failed"
