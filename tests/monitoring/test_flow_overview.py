"""Operators see, per distributor and instance, where work waits: held for the distributor's
fair share, queued, running, behind an earlier job, waiting for a Google quota; the job's page
says why it waits and how far a long job has got; /metrics exports the same counts."""

from __future__ import annotations

import re

import redis

from bss.db import session_scope
from bss.gateway import QuotaKey, QuotaLimiter
from bss.models import Distributor, Instance, JobState, utcnow
from tests.support.dashboard import add_job, signed_in

PROJECT = "987654321098"
QUOTA_REASON = (
    "Waiting for the licensing API quota of Cloud project 123456789012 (1 calls/s): resumes in 3.0s"
)


def cells(html: str, row_attr: str) -> dict[str, str]:
    """The numbers of one row of the flow table, by column class."""
    row = re.search(rf'<tr class="flow-[a-z]+" {row_attr}>(.*?)</tr>', html, re.S)
    assert row, f"no row {row_attr}"
    return {
        k: re.sub(r"<[^>]+>", "", v).strip()
        for k, v in re.findall(r'<td class="num ([a-z_]+)">(.*?)</td>', row.group(1), re.S)
    }


def test_the_overview_counts_work_per_distributor_and_instance_by_where_it_waits(
    dashboard_app, dashboard_settings, world, database_url
):
    a = world.a
    with session_scope(database_url) as s:
        distributor = s.get(Distributor, a.distributor_id)
        distributor.weight, distributor.max_in_flight = 2.0, 6
        s.add(distributor)
        slug = distributor.slug
    # world.a has one queued job never sent (held); add one of each other kind
    add_job(database_url, a.instance_id, state=JobState.QUEUED, enqueued_at=utcnow())
    add_job(database_url, a.instance_id, state=JobState.QUEUED, enqueued_at=utcnow())
    add_job(database_url, a.instance_id, state=JobState.RUNNING, lease_owner="h:1:t")
    add_job(database_url, a.instance_id, state=JobState.WAITING, wait_reason="Waiting for job x")
    quota_job = add_job(
        database_url,
        a.instance_id,
        state=JobState.WAITING_QUOTA,
        wait_reason=QUOTA_REASON,
        next_attempt_at=utcnow(),
    )
    add_job(database_url, a.instance_id, state=JobState.SUCCEEDED, finished_at=utcnow())

    portal = signed_in(dashboard_app, world.users["operator"])
    html = portal.client.get("/dashboard/").get_data(as_text=True)

    instance = cells(html, f'data-instance="{a.instance_name}"')
    assert instance == {
        "held": "1",
        "queued": "2",
        "running": "1",
        "waiting": "1",
        "waiting_quota": "1",
        "retrying": "",
        "waiting_reauth": "",
    }
    assert cells(html, f'data-distributor="{slug}"')["queued"] == "2"
    assert "weight 2, at most 6 at a time" in html
    # B's operator-visible row is there too, and its admin sees only B
    assert f'data-instance="{world.b.instance_name}"' in html
    admin_b = signed_in(dashboard_app, world.users["admin_b"])
    html_b = admin_b.client.get("/dashboard/").get_data(as_text=True)
    assert f'data-instance="{a.instance_name}"' not in html_b
    assert f'data-instance="{world.b.instance_name}"' in html_b

    # The job's page says why it waits; the jobs list says it on hover
    page = portal.client.get(f"/dashboard/jobs/{quota_job}").get_data(as_text=True)
    assert re.search(r'id="wait-reason">\s*Waiting for the licensing API quota', page)
    listing = portal.client.get("/dashboard/jobs?state=waiting_quota").get_data(as_text=True)
    assert f'title="{QUOTA_REASON}"' in listing

    # The quota table shows the Cloud project of A's instance, named with it, to its admin;
    # another distributor's admin does not see it
    with session_scope(database_url) as s:
        instance = s.get(Instance, a.instance_id)
        instance.client_id = f"{PROJECT}-abc.apps.googleusercontent.com"
        s.add(instance)
    client = redis.Redis.from_url(dashboard_settings.redis_url)
    assert QuotaLimiter(client).acquire(QuotaKey(PROJECT, "licensing"), 1.0) == 0.0
    client.close()
    admin_a = signed_in(dashboard_app, world.users["admin_a"])
    html_a = admin_a.client.get("/dashboard/").get_data(as_text=True)
    row = re.search(
        rf'<tr class="quota" data-project="{PROJECT}" data-api="licensing">(.*?)</tr>', html_a, re.S
    )
    assert row and a.instance_name in row.group(1)
    assert re.search(r'class="num limit">1<', row.group(1))
    assert f'data-project="{PROJECT}"' not in admin_b.client.get("/dashboard/").get_data(
        as_text=True
    )

    # /metrics carries the same counts
    metrics = dashboard_app.test_client().get("/metrics").get_data(as_text=True)
    line = (
        f'bss_distributor_jobs{{distributor="{slug}",instance="{a.instance_name}",'
        f'where="waiting_quota"}} 1.0'
    )
    assert line in metrics


def test_a_long_jobs_progress_shows_on_its_page_and_in_the_list(dashboard_app, world, database_url):
    job_id = add_job(
        database_url,
        world.a.instance_id,
        state=JobState.RUNNING,
        operation="license.assign",
        progress={"done": 412, "total": 1000, "unit": "users"},
    )
    portal = signed_in(dashboard_app, world.users["operator"])
    page = portal.client.get(f"/dashboard/jobs/{job_id}").get_data(as_text=True)
    assert re.search(r'<progress max="1000" value="412"></progress> 412/1000 users', page)
    listing = portal.client.get("/dashboard/jobs?state=running").get_data(as_text=True)
    assert '<span class="muted progress">412/1000</span>' in listing
