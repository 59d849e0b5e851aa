"""Overview: queues, workers and what they run, throughput and failures, instances needing
re-authentication first."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import redis
from flask import Blueprint, render_template
from sqlalchemy import func
from sqlmodel import col, select

from bss import monitoring
from bss.accounts import ALL
from bss.broker import JOBS_QUEUE, MAIL_QUEUE, WEBHOOKS_QUEUE
from bss.errors import BrokerUnavailable
from bss.gateway import project_of, quota_usage
from bss.models import Distributor, Instance, InstanceStatus
from bss.monitoring import FLOW_COLUMNS, finished_buckets, flow, running_jobs
from web.dashboard.access import scope
from web.dashboard.charts import throughput_chart
from web.dashboard.common import redis_client
from web.deps import db, settings
from web.portal.access import sign_in_required, vault

bp = Blueprint("dashboard_overview", __name__, url_prefix="/dashboard")

ATTENTION = (InstanceStatus.NEEDS_REAUTH, InstanceStatus.NOT_AUTHENTICATED)
# The overview names the first few; the Instances page lists them all.
ATTENTION_SHOWN = 15


def _broker(visible: int | None) -> dict[str, Any]:
    """Queues from the broker (Redis or RabbitMQ) and live workers from their heartbeats in
    Redis, or why they could not be read (the failure's kind: no host or URL on the page)."""
    error = None
    try:
        queues = monitoring.broker_queue_stats(settings(), [JOBS_QUEUE, WEBHOOKS_QUEUE, MAIL_QUEUE])
    except BrokerUnavailable as exc:
        queues, error = [], exc.details
    try:
        workers = monitoring.live_workers(redis_client())
    except redis.RedisError as exc:
        workers, error = [], error or type(exc).__name__
    running = running_jobs(db(), scope=visible)
    for worker in workers:
        # A running job's lease_owner is "host:pid:thread"; the worker's name is "host:pid".
        worker["jobs"] = [
            j for j in running if (j.lease_owner or "").startswith(worker["worker"] + ":")
        ]
    return {
        "queues": queues,
        "workers": sorted(workers, key=lambda w: w["worker"]),
        "broker_error": error,
    }


def _quota(visible: int | None) -> list[dict[str, Any]]:
    """Google quota use of the Cloud projects of the instances this user may see, each named
    with its instances."""
    query = select(Instance)
    if visible is not ALL:
        query = query.where(col(Instance.distributor_id) == visible)
    named: dict[str, list[str]] = {}
    for instance in db().exec(query).all():
        named.setdefault(project_of(instance, vault=vault()), []).append(instance.name)
    return [
        {"use": use, "instances": sorted(named[use.project])}
        for use in quota_usage(settings())
        if use.project in named
    ]


def _context() -> dict[str, Any]:
    visible = scope()
    session = db()
    needing = col(Instance.status).in_(list(ATTENTION))
    query = (
        select(Instance, Distributor)
        .join(Distributor, col(Distributor.id) == col(Instance.distributor_id))
        .where(needing)
        # "needs_reauth" sorts before "not_authenticated": broken instances first
        .order_by(col(Instance.status), col(Instance.updated_at).desc())
        .limit(ATTENTION_SHOWN)
    )
    count = select(func.count()).select_from(Instance).where(needing)
    if visible is not ALL:
        query = query.where(col(Instance.distributor_id) == visible)
        count = count.where(col(Instance.distributor_id) == visible)
    attention = list(session.exec(query).all())
    attention_total = session.exec(count).one()
    hour = finished_buckets(session, scope=visible, window=timedelta(hours=1), buckets=12)
    day = finished_buckets(session, scope=visible, window=timedelta(days=1), buckets=24)
    return {
        **_broker(visible),
        "flow": flow(session, scope=visible),
        "flow_columns": FLOW_COLUMNS,
        "quota": _quota(visible),
        "attention": attention,
        "attention_total": attention_total,
        "hour": hour,
        "day": day,
        "hour_chart": throughput_chart(hour, title="Jobs finished per 5 minutes, last hour"),
        "day_chart": throughput_chart(day, title="Jobs finished per hour, last day"),
    }


@bp.get("/")
@sign_in_required
def overview():
    return render_template("dashboard/overview.html", **_context())


@bp.get("/live")
@sign_in_required
def overview_live():
    return render_template("dashboard/_overview_live.html", **_context())
