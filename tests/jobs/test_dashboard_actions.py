"""The jobs list, job detail and the actions on them, in-process against a real SQLite."""

from __future__ import annotations

import re
from datetime import timedelta

from sqlmodel import col, select

from bss.db import session_scope
from bss.jobs import Actor, JobSearch, bulk_retry
from bss.models import AuditEntry, Instance, InstanceStatus, Job, JobEvent, JobState, utcnow
from tests.support.dashboard import add_job, signed_in
from tests.support.portal_pages import csrf_of


def job(database_url: str, job_id: str) -> Job:
    with session_scope(database_url) as s:
        found = s.get(Job, job_id)
        assert found is not None
        s.expunge(found)
        return found


def audit_entries(database_url: str, action: str, actor: str) -> list[AuditEntry]:
    with session_scope(database_url) as s:
        rows = s.exec(
            select(AuditEntry).where(AuditEntry.action == action, AuditEntry.actor == actor)
        ).all()
        for r in rows:
            s.expunge(r)
        return list(rows)


def shown_jobs(html: str) -> list[str]:
    return re.findall(r'data-job-id="([^"]+)"', html)


def test_retrying_a_failed_job_queues_it_again_with_a_fresh_budget_and_is_audited(
    dashboard_app, world, database_url, sent
):
    # Given A's failed job (1 attempt) and A's admin
    admin = signed_in(dashboard_app, world.users["admin_a"])
    page = admin.get(f"/dashboard/jobs/{world.a.failed_job}")
    assert 'id="retry-job"' in page.text
    # When they press Retry
    resp = admin.client.post(
        f"/dashboard/jobs/{world.a.failed_job}/retry", data={"csrf_token": csrf_of(page.text)}
    )
    assert resp.status_code == 302
    # Then the job is queued again with a fresh attempt budget, its error cleared, its message sent
    retried = job(database_url, world.a.failed_job)
    assert (retried.state, retried.attempts, retried.error) == ("queued", 0, None)
    assert sent == [world.a.failed_job]
    assert retried.enqueued_at is not None
    # And its timeline and the audit log say who did it, and from where
    detail = admin.get(f"/dashboard/jobs/{world.a.failed_job}").text
    assert f"Retried by {world.users['admin_a'].email}" in detail
    entries = audit_entries(database_url, "job.retry", world.users["admin_a"].email)
    assert [(e.target, e.source_ip, e.distributor_id) for e in entries] == [
        (world.a.failed_job, "127.0.0.1", world.a.distributor_id)
    ]


def test_a_job_cannot_be_retried_twice_or_cancelled_once_running(
    dashboard_app, world, database_url
):
    running = add_job(
        database_url, world.a.instance_id, state=JobState.RUNNING, lease_owner="host:1:Thread-1"
    )
    operator = signed_in(dashboard_app, world.users["operator"])
    token = operator.token()
    # When an operator cancels a running job
    resp = operator.client.post(
        f"/dashboard/jobs/{running}/cancel", data={"csrf_token": token}, follow_redirects=True
    )
    # Then they are told why not, and nothing changed
    assert "only a queued, retrying or waiting job can be cancelled" in resp.text
    assert job(database_url, running).state == "running"
    assert audit_entries(database_url, "job.cancel", world.users["operator"].email) == []


def test_cancelling_a_queued_job(dashboard_app, world, database_url, sent):
    operator = signed_in(dashboard_app, world.users["operator"])
    resp = operator.client.post(
        f"/dashboard/jobs/{world.b.queued_job}/cancel", data={"csrf_token": operator.token()}
    )
    assert resp.status_code == 302
    assert job(database_url, world.b.queued_job).state == "cancelled"
    assert sent == []
    [entry] = audit_entries(database_url, "job.cancel", world.users["operator"].email)
    assert entry.distributor_id == world.b.distributor_id


def test_bulk_retry_says_how_many_and_retries_exactly_the_filtered_set(
    dashboard_app, world, database_url, sent
):
    # Given on A's instance: 4 failed jobs (one from the world), 1 succeeded, 1 queued;
    # and a failed job on B's instance
    failed = [world.a.failed_job] + [
        add_job(database_url, world.a.instance_id, state=JobState.FAILED, attempts=3)
        for _ in range(3)
    ]
    done = add_job(database_url, world.a.instance_id, state=JobState.SUCCEEDED)
    operator = signed_in(dashboard_app, world.users["operator"])
    # When the operator asks to retry the failed jobs of A's instance
    filters = {"instance": str(world.a.instance_id), "state": "failed"}
    confirm = operator.get("/dashboard/jobs/bulk", query_string={"action": "retry", **filters})
    # Then the confirmation says how many
    assert confirm.status_code == 200
    assert re.search(r'id="bulk-count">4<', confirm.text), confirm.text
    assert "Retry 4 jobs" in confirm.text
    # When they confirm
    form = dict(re.findall(r'<input type="hidden" name="([^"]+)" value="([^"]*)"', confirm.text))
    resp = operator.client.post("/dashboard/jobs/bulk", data=form, follow_redirects=True)
    # Then exactly those 4 are queued again and sent, and the page says so, filters kept
    assert "Retried 4 jobs." in resp.text
    assert 'value="failed" selected' in resp.text
    assert sorted(sent) == sorted(failed)
    assert {job(database_url, j).state for j in failed} == {"queued"}
    assert job(database_url, done).state == "succeeded"
    assert job(database_url, world.b.failed_job).state == "failed"
    # And the audit log has one entry for A, with the count and the filter
    [entry] = audit_entries(database_url, "job.bulk_retry", world.users["operator"].email)
    assert entry.distributor_id == world.a.distributor_id
    assert entry.details["count"] == 4 and entry.details["filters"]["state"] == "failed"


def test_bulk_retry_leaves_out_jobs_created_after_the_confirmation(world, database_url):
    # Given a failed job created after the operator confirmed
    confirmed_at = utcnow()
    late = add_job(
        database_url,
        world.a.instance_id,
        state=JobState.FAILED,
        created_at=confirmed_at + timedelta(seconds=5),
    )
    sent: list[str] = []
    with session_scope(database_url) as s:
        outcome = bulk_retry(
            s,
            scope=world.a.distributor_id,
            search=JobSearch(instance_id=world.a.instance_id),
            as_of=confirmed_at,
            actor=Actor("ops@example.com"),
            send=sent.append,
            batch_size=1,  # one job per batch: the keyset walk must not skip or repeat any
        )
    # Then only the earlier failed job is retried
    assert (outcome.changed, sent) == (1, [world.a.failed_job])
    assert job(database_url, late).state == "failed"


def test_filters_search_and_pages(dashboard_app, world, database_url):
    operator = signed_in(dashboard_app, world.users["operator"])
    base = {"instance": str(world.a.instance_id)}
    # Given 60 more jobs on A's instance
    many = [
        add_job(
            database_url,
            world.a.instance_id,
            state=JobState.SUCCEEDED,
            created_at=utcnow() - timedelta(hours=1, seconds=i),
        )
        for i in range(60)
    ]
    # When the operator pages through them, newest first
    first = operator.get("/dashboard/jobs", query_string=base)
    ids = shown_jobs(first.text)
    assert len(ids) == 50
    next_url = re.search(r'href="([^"]+)" id="next-page"', first.text).group(1)
    second = shown_jobs(operator.get(next_url.replace("&amp;", "&")).text)
    # Then every job shows up exactly once
    assert len(second) == 62 - 50
    assert sorted(ids + second) == sorted([world.a.failed_job, world.a.queued_job, *many])
    # And search finds a job by its id, external ref or idempotency key
    a_job = job(database_url, world.a.failed_job)
    for term in (a_job.id, a_job.external_ref, a_job.idempotency_key):
        assert shown_jobs(operator.get("/dashboard/jobs", query_string={"q": term}).text) == [
            a_job.id
        ]
    # And the customer-domain filter finds it by the domain in its request
    found = operator.get("/dashboard/jobs", query_string={"domain": a_job.customer_domain.upper()})
    assert shown_jobs(found.text) == [a_job.id]
    # And a time window leaves the hour-old jobs out
    half_an_hour_ago = (utcnow() - timedelta(minutes=30)).strftime("%Y-%m-%dT%H:%M")
    recent = operator.get("/dashboard/jobs", query_string={**base, "from": half_an_hour_ago})
    assert sorted(shown_jobs(recent.text)) == sorted([world.a.failed_job, world.a.queued_job])


def test_the_page_refreshes_its_rows_with_the_same_filters(dashboard_app, world):
    operator = signed_in(dashboard_app, world.users["operator"])
    page = operator.get("/dashboard/jobs", query_string={"state": "failed", "domain": "x.example"})
    refresh = re.search(r'data-refresh="([^"]+)"', page.text).group(1).replace("&amp;", "&")
    assert refresh.startswith("/dashboard/jobs/rows?")
    assert "state=failed" in refresh and "domain=x.example" in refresh


def test_bad_filters_are_refused_with_a_clear_message(dashboard_app, world):
    operator = signed_in(dashboard_app, world.users["operator"])
    for query, words in (
        ({"state": "exploded"}, "The filter 'state' is invalid: use one of queued"),
        ({"operation": "nope"}, "The filter 'operation' is invalid"),
        ({"from": "yesterday"}, "expected a date and time"),
        ({"instance": "x"}, "expected a number"),
        ({"cursor": "garbage!"}, "The cursor is not one this API gave out"),
    ):
        resp = operator.get("/dashboard/jobs", query_string=query)
        assert resp.status_code == 422, query
        assert words in resp.text.replace("&#39;", "'"), (query, resp.text)


def test_job_detail_shows_the_error_hint_and_calls_but_never_a_secret(
    dashboard_app, world, database_url
):
    with session_scope(database_url) as s:
        s.add(
            JobEvent(
                job_id=world.a.failed_job,
                kind="google_call",
                message="reseller.customers.get",
                data={
                    "method": "reseller.customers.get",
                    "status": 400,
                    "reason": "invalid",
                    "duration_ms": 12,
                    "attempt": 1,
                },
            )
        )
    page = signed_in(dashboard_app, world.users["operator"]).get(
        f"/dashboard/jobs/{world.a.failed_job}"
    )
    assert page.status_code == 200
    assert "Google refused: invalid" in page.text and "Fix it." in page.text
    assert "reseller.customers.get" in page.text and ">400<" in page.text
    assert "hunter2" not in page.text and "[redacted]" in page.text


def test_a_refusal_by_our_own_rule_does_not_claim_an_answer_from_google(
    dashboard_app, world, database_url
):
    from bss.errors import RuleRefused, error_body

    refusal = RuleRefused(
        "An annual plan cannot lose seats before its renewal.",
        status=None,
        reason="seatsBelowCommitment",
        method=None,
        hint="Lower the seats at renewal.",
    )
    job_id = add_job(
        database_url, world.a.instance_id, state=JobState.FAILED, error=error_body(refusal)
    )
    page = signed_in(dashboard_app, world.users["operator"]).get(f"/dashboard/jobs/{job_id}")
    text = page.text.replace("&#39;", "'")
    assert "Refused before calling Google, by its rule seatsBelowCommitment" in text
    assert "answered" not in text


def test_a_waiting_job_links_to_the_job_it_waits_for(dashboard_app, world, database_url):
    first = add_job(database_url, world.a.instance_id, state=JobState.RUNNING)
    behind = add_job(database_url, world.a.instance_id, state=JobState.WAITING, waiting_for=first)
    page = signed_in(dashboard_app, world.users["operator"]).get(f"/dashboard/jobs/{behind}")
    assert page.status_code == 200
    assert 'id="waiting-for"' in page.text and f"/dashboard/jobs/{first}" in page.text


def test_the_overview_shows_instances_needing_reauth_first_and_queues(dashboard_app, world):
    page = signed_in(dashboard_app, world.users["admin_a"]).get("/dashboard/")
    text = page.text
    assert page.status_code == 200
    assert text.index('id="attention"') < text.index('id="queues"')
    assert world.a.instance_name in text and "token revoked" in text
    assert 'id="queue-jobs"' in text and "<svg" in text


def test_waiting_jobs_are_counted_per_instance(dashboard_app, world, database_url):
    for _ in range(2):
        add_job(database_url, world.a.instance_id, state=JobState.WAITING_REAUTH)
    text = signed_in(dashboard_app, world.users["admin_a"]).get("/dashboard/instances").text
    assert "2 waiting_reauth" in text and "1 queued" in text


def test_recorded_events_name_the_actor(world, database_url):
    """The job's own timeline says who retried it (as the API's timeline shows billing)."""
    with session_scope(database_url) as s:
        bulk_retry(
            s,
            scope=None,
            search=JobSearch(q=world.b.failed_job),
            as_of=utcnow(),
            actor=Actor("ops@example.com", "10.0.0.9"),
            send=lambda _id: None,
        )
    with session_scope(database_url) as s:
        events = s.exec(
            select(JobEvent).where(JobEvent.job_id == world.b.failed_job).order_by(col(JobEvent.id))
        ).all()
        assert events[-1].message == "Retried by ops@example.com (bulk): queued again"


def test_the_old_jobs_pages_lead_to_the_dashboard(dashboard_app, world):
    operator = signed_in(dashboard_app, world.users["operator"])
    listing = operator.get("/jobs", query_string={"state": "failed"})
    assert listing.status_code == 302 and listing.location == "/dashboard/jobs?state=failed"
    detail = operator.get(f"/jobs/{world.a.failed_job}")
    assert detail.location == f"/dashboard/jobs/{world.a.failed_job}"
    assert dashboard_app.test_client().get("/jobs").location.startswith("/sign-in?next=")


def test_charts_count_jobs_finished_in_the_last_hour_and_day(world, database_url):
    from bss.monitoring import finished_buckets

    # Given on A: two jobs that succeeded and one that failed minutes ago (plus the world's
    # failed one), and one that failed three hours ago
    now = utcnow()
    for state, ago in (("succeeded", 2), ("succeeded", 3), ("failed", 4), ("failed", 180)):
        add_job(
            database_url,
            world.a.instance_id,
            state=state,
            created_at=now - timedelta(minutes=ago + 1),
            finished_at=now - timedelta(minutes=ago),
        )
    with session_scope(database_url) as s:
        hour = finished_buckets(
            s, scope=world.a.distributor_id, window=timedelta(hours=1), buckets=12
        )
        day = finished_buckets(
            s, scope=world.a.distributor_id, window=timedelta(days=1), buckets=24
        )
    # Then the hour counts the recent ones, the day all of them, in time order
    assert (sum(b.succeeded for b in hour), sum(b.failed for b in hour)) == (2, 2)
    assert (sum(b.succeeded for b in day), sum(b.failed for b in day)) == (2, 3)
    assert len(hour) == 12 and hour[-1].start <= now < hour[-1].start + timedelta(minutes=5)
    assert [b.start for b in day] == sorted(b.start for b in day)
    busy = [b for b in hour if b.succeeded or b.failed]
    assert sum(b.failure_rate * (b.succeeded + b.failed) for b in busy) == 2


def test_a_button_pressed_without_the_forms_csrf_token_changes_nothing(
    dashboard_app, world, database_url
):
    operator = signed_in(dashboard_app, world.users["operator"])
    for path in (
        f"/dashboard/jobs/{world.a.failed_job}/retry",
        f"/dashboard/jobs/{world.a.queued_job}/cancel",
        "/dashboard/jobs/bulk?action=retry",
    ):
        resp = operator.client.post(path, data={"action": "retry", "as_of": utcnow().isoformat()})
        assert resp.status_code == 400, path
    assert job(database_url, world.a.failed_job).state == "failed"
    assert job(database_url, world.a.queued_job).state == "queued"


def test_a_retry_while_the_broker_is_away_leaves_the_job_queued_for_the_sweep(
    dashboard_app, world, database_url
):
    def broker_away(_job_id: str) -> None:
        raise ConnectionError("Redis is restarting")

    dashboard_app.extensions["bss.send"] = broker_away
    operator = signed_in(dashboard_app, world.users["operator"])
    resp = operator.client.post(
        f"/dashboard/jobs/{world.a.failed_job}/retry", data={"csrf_token": operator.token()}
    )
    assert resp.status_code == 302
    retried = job(database_url, world.a.failed_job)
    # queued (the record), not marked as sent: the scheduler's sweep sends it later
    assert retried.state == "queued" and retried.enqueued_at is None


def test_the_overview_names_the_first_broken_instances_and_links_to_all(
    dashboard_app, world, database_url
):
    # Given A has 20 more instances whose grant died
    with session_scope(database_url) as s:
        for n in range(20):
            s.add(
                Instance(
                    distributor_id=world.a.distributor_id,
                    name=f"broken-{n}",
                    status=InstanceStatus.NEEDS_REAUTH,
                    last_error="invalid_grant",
                )
            )
    # When A's admin opens the overview
    page = signed_in(dashboard_app, world.users["admin_a"]).get("/dashboard/").text
    # Then it shows the first 15 and says how many there are in all, B's not counted
    assert page.count('class="instance-needs_reauth"') == 15
    assert "All 21 instances that need attention" in page
