"""Who sees what: another distributor's instance or job is a 404 on every route."""

from __future__ import annotations

from bss.db import session_scope
from bss.models import Instance, Job, JobState
from tests.support.portal import Portal, make_account


def instance_routes(app) -> list[tuple[str, str]]:
    """Every (method, rule) of the app that names an instance."""
    return sorted(
        (method, rule.rule)
        for rule in app.url_map.iter_rules()
        if "<int:instance_id>" in rule.rule
        for method in (rule.methods or set()) - {"HEAD", "OPTIONS"}
    )


def test_another_distributors_instance_is_a_404_on_every_route(app, portal, google, database_url):
    # Given distributor A's instance
    instance_id = portal.create_instance("a-secret-name", google.client_id, google.client_secret)
    with session_scope(database_url) as s:
        before = s.get(Instance, instance_id).model_dump()
    # And an admin of distributor B, signed in
    other = Portal(app.test_client()).sign_in(make_account(database_url))
    token = other.token()
    routes = instance_routes(app)
    assert len(routes) >= 8, routes  # show, edit (GET+POST), health, and every button
    for method, rule in routes:
        path = rule.replace("<int:instance_id>", str(instance_id))
        data = {"csrf_token": token, "name": "taken over", "mode": "oauth", "client_id": "x"}
        resp = other.client.open(path, method=method, data=data if method == "POST" else None)
        # Then every route answers 404, as for an instance that does not exist
        assert resp.status_code == 404, (method, rule, resp.status_code)
        assert "a-secret-name" not in resp.text
    # And nothing about the instance changed
    with session_scope(database_url) as s:
        assert s.get(Instance, instance_id).model_dump() == before
    # And B's instance list does not show it
    assert f"/portal/instances/{instance_id}" not in other.get("/portal/instances").text


def test_operators_see_every_distributor(app, portal, google, database_url):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    operator = Portal(app.test_client()).sign_in(make_account(database_url, role="operator"))
    listing = operator.get("/portal/instances").text
    assert f"/portal/instances/{instance_id}" in listing
    assert operator.get(f"/portal/instances/{instance_id}").status_code == 200


def test_an_operator_creates_an_instance_for_a_chosen_distributor(
    app, account, database_url, google
):
    operator = Portal(app.test_client()).sign_in(make_account(database_url, role="operator"))
    new_id = operator.create_instance(
        "for-them",
        google.client_id,
        google.client_secret,
        distributor_id=str(account.distributor_id),
    )
    with session_scope(database_url) as s:
        assert s.get(Instance, new_id).distributor_id == account.distributor_id


def test_the_jobs_page_shows_each_distributor_its_own_jobs(
    app, portal, account, google, database_url
):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    with session_scope(database_url) as s:
        job = Job(
            distributor_id=account.distributor_id,
            instance_id=instance_id,
            operation="customer.create",
            request_hash="1" * 64,
            state=JobState.QUEUED,
        )
        s.add(job)
        job_id = job.id
    # (/jobs and /jobs/<id> redirect to the operator dashboard's pages)
    assert job_id in portal.get("/jobs", follow_redirects=True).text
    assert portal.get(f"/jobs/{job_id}", follow_redirects=True).status_code == 200
    other = Portal(app.test_client()).sign_in(make_account(database_url))
    assert job_id not in other.get("/jobs", follow_redirects=True).text
    assert other.get(f"/jobs/{job_id}", follow_redirects=True).status_code == 404
    operator = Portal(app.test_client()).sign_in(make_account(database_url, role="operator"))
    assert job_id in operator.get("/jobs", follow_redirects=True).text
    assert Portal(app.test_client()).get("/jobs").status_code == 302
