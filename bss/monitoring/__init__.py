"""What operators and Prometheus read: queue depths and the oldest message, workers alive (by
their heartbeats), jobs by state and how long they took, and the dashboard's charts. It only
reads; the counters of Google calls are the gateway's own (`bss.gateway.metrics`)."""

from bss.monitoring.counts import finished_since, forget_settled, job_counts
from bss.monitoring.dashboard import (
    Bucket,
    finished_buckets,
    running_jobs,
    waiting_by_instance,
)
from bss.monitoring.flow import COLUMNS as FLOW_COLUMNS
from bss.monitoring.flow import DistributorFlow, FlowRow, flow
from bss.monitoring.queues import (
    HEARTBEAT_INTERVAL_S,
    HEARTBEAT_TIMEOUT_S,
    WORKERS_INFO_KEY,
    WORKERS_SEEN_KEY,
    QueueStats,
    broker_queue_stats,
    forget_heartbeat,
    live_workers,
    queue_stats,
    record_heartbeat,
)

__all__ = [
    "HEARTBEAT_INTERVAL_S",
    "HEARTBEAT_TIMEOUT_S",
    "WORKERS_INFO_KEY",
    "WORKERS_SEEN_KEY",
    "FLOW_COLUMNS",
    "Bucket",
    "QueueStats",
    "broker_queue_stats",
    "DistributorFlow",
    "FlowRow",
    "flow",
    "finished_buckets",
    "finished_since",
    "forget_settled",
    "job_counts",
    "live_workers",
    "queue_stats",
    "forget_heartbeat",
    "record_heartbeat",
    "running_jobs",
    "waiting_by_instance",
]
