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
from bss.broker import JOBS_QUEUE, WEBHOOKS_QUEUE
from bss.models import Distributor, Instance, InstanceStatus
from bss.monitoring import finished_buckets, running_jobs
from web.dashboard.access import scope
from web.dashboard.charts import throughput_chart
from web.dashboard.common import redis_client
from web.deps import db
from web.portal.access import sign_in_required

bp = Blueprint("dashboard_overview", __name__, url_prefix="/dashboard")

ATTENTION = (InstanceStatus.NEEDS_REAUTH, InstanceStatus.NOT_AUTHENTICATED)
# The overview names the first few; the Instances page lists them all.
ATTENTION_SHOWN = 15


def _broker(visible: int | None) -> dict[str, Any]:
    """Queues and live workers from Redis, or why they could not be read."""
    try:
        client = redis_client()
        queues = [monitoring.queue_stats(client, q) for q in (JOBS_QUEUE, WEBHOOKS_QUEUE)]
        workers = monitoring.live_workers(client)
    except redis.RedisError as exc:
        return {"queues": [], "workers": [], "broker_error": type(exc).__name__}
    running = running_jobs(db(), scope=visible)
    for worker in workers:
        # A running job's lease_owner is "host:pid:thread"; the worker's name is "host:pid".
        worker["jobs"] = [
            j for j in running if (j.lease_owner or "").startswith(worker["worker"] + ":")
        ]
    return {
        "queues": queues,
        "workers": sorted(workers, key=lambda w: w["worker"]),
        "broker_error": None,
    }


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
