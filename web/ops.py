"""For machines: /healthz, /readyz and /metrics (Prometheus)."""

from __future__ import annotations

import statistics

import redis
from flask import Blueprint, Response, jsonify
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily
from sqlalchemy import text

from bss import monitoring
from bss.broker import JOBS_QUEUE, MAIL_QUEUE, WEBHOOKS_QUEUE
from bss.errors import BrokerUnavailable
from web.deps import db, settings
from web.flow_metrics import FlowCollector

bp = Blueprint("ops", __name__)


def _redis() -> redis.Redis:
    return redis.Redis.from_url(settings().redis_url, socket_timeout=2, socket_connect_timeout=2)


@bp.get("/healthz")
def healthz():
    """The process is up."""
    return jsonify(status="ok")


@bp.get("/readyz")
def readyz():
    """The database, Redis and the broker (when it is not that Redis) answer: ready for
    traffic."""
    checks: dict[str, str] = {}
    try:
        db().execute(text("SELECT 1"))
        checks["database"] = "ok"
    except Exception as exc:  # any failure means not ready; say which
        checks["database"] = f"error: {type(exc).__name__}"
    try:
        _redis().ping()
        checks["redis"] = "ok"
    except Exception as exc:
        checks["redis"] = f"error: {type(exc).__name__}"
    if settings().broker_url:  # RabbitMQ, or a Redis of its own
        try:
            monitoring.broker_queue_stats(settings(), [JOBS_QUEUE])
            checks["broker"] = "ok"
        except BrokerUnavailable as exc:
            checks["broker"] = f"error: {exc.details}"
    ready = all(v == "ok" for v in checks.values())
    return jsonify(status="ready" if ready else "not ready", checks=checks), 200 if ready else 503


class _StateCollector:
    """Read at scrape time from the database and the broker, so every web process agrees."""

    def collect(self):  # type: ignore[no-untyped-def]
        jobs = GaugeMetricFamily(
            "bss_jobs", "Jobs by state and operation", labels=["state", "operation"]
        )
        for (state, op), n in monitoring.job_counts(db()).items():
            jobs.add_metric([state, op], n)
        yield jobs
        recent = monitoring.finished_since(db(), seconds=3600)
        durations = GaugeMetricFamily(
            "bss_job_duration_seconds",
            "Duration of jobs finished in the last hour",
            labels=["operation", "quantile"],
        )
        for op in sorted({r["operation"] for r in recent}):
            values = sorted(r["duration"] for r in recent if r["operation"] == op)
            durations.add_metric([op, "0.5"], statistics.median(values))
            durations.add_metric(
                [op, "0.95"], values[min(len(values) - 1, int(len(values) * 0.95))]
            )
        yield durations
        yield from self._queues()
        try:
            workers = len(monitoring.live_workers(_redis()))  # heartbeats are in Redis
        except redis.RedisError:
            return
        yield GaugeMetricFamily(
            "bss_workers_alive", "Worker processes with a recent heartbeat", value=workers
        )

    def _queues(self):  # type: ignore[no-untyped-def]
        """Queue depths from the broker (Redis or RabbitMQ); none while it cannot be read.
        What a broker does not tell (RabbitMQ: in progress, the oldest's age) is left out."""
        try:
            queues = monitoring.broker_queue_stats(
                settings(), [JOBS_QUEUE, WEBHOOKS_QUEUE, MAIL_QUEUE]
            )
        except BrokerUnavailable:
            return
        depth = GaugeMetricFamily(
            "bss_queue_messages", "Messages per queue", labels=["queue", "kind"]
        )
        age = GaugeMetricFamily(
            "bss_queue_oldest_message_age_seconds",
            "Age of the oldest waiting message",
            labels=["queue"],
        )
        for stats in queues:
            for kind in ("ready", "delayed", "in_progress", "dead"):
                if getattr(stats, kind) is not None:
                    depth.add_metric([stats.name, kind], getattr(stats, kind))
            if stats.broker == "redis":  # None there means no message waits
                age.add_metric([stats.name], stats.oldest_age_seconds or 0.0)
        yield depth
        yield age


@bp.get("/metrics")
def metrics():
    registry = CollectorRegistry()
    registry.register(_StateCollector())
    registry.register(FlowCollector())
    return Response(generate_latest(registry), mimetype="text/plain; version=0.0.4")
