"""/metrics' view of the flow: jobs not ended per distributor and instance, by where they wait,
and each Cloud project's Google quota use (the dashboard's "Work per distributor")."""

from __future__ import annotations

from collections.abc import Iterator

from prometheus_client.core import GaugeMetricFamily

from bss import monitoring
from bss.accounts import ALL
from web.deps import db


class FlowCollector:
    """Read at scrape time from the database (and the quota limiter in Redis)."""

    def collect(self) -> Iterator[GaugeMetricFamily]:
        jobs = GaugeMetricFamily(
            "bss_distributor_jobs",
            "Jobs not ended, per distributor and instance, by where they are (held: queued but "
            "kept back for the distributor's fair share)",
            labels=["distributor", "instance", "where"],
        )
        for group in monitoring.flow(db(), scope=ALL):
            for row in group.rows:
                for key, _label in monitoring.FLOW_COLUMNS:
                    jobs.add_metric([group.slug, row.instance, key], row.counts.get(key, 0))
        yield jobs
