"""Leases kept alive by the process that holds them.

A worker leases a job for BSS_JOB_LEASE_SECONDS; while the worker process lives, a thread of its
own extends the lease of every job it runs, a third of a lease before it would lapse. So a job
whose worker died lapses within one lease and the sweep hands it to another worker, while a
live worker's job is never taken over, however long it runs.
"""

from __future__ import annotations

import logging
import threading
import time
from datetime import timedelta

from sqlalchemy import tuple_, update
from sqlmodel import col

from bss.db import session_scope
from bss.models import Job, JobState, utcnow
from bss.settings import Settings

log = logging.getLogger(__name__)


class LeaseKeeper:
    """The leases this process holds, renewed every third of a lease by a daemon thread."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self._held: dict[str, str] = {}  # job id -> the worker (thread) that leased it
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def hold(self, job_id: str, worker: str) -> None:
        with self._lock:
            self._held[job_id] = worker
            if self._thread is None or not self._thread.is_alive():
                self._thread = threading.Thread(target=self._loop, daemon=True, name="bss-leases")
                self._thread.start()

    def release(self, job_id: str) -> None:
        with self._lock:
            self._held.pop(job_id, None)

    def renew(self) -> int:
        """Extend every held lease that is still this process's; how many were."""
        with self._lock:
            held = list(self._held.items())
        if not held:
            return 0
        until = utcnow() + timedelta(seconds=self.settings.job_lease_seconds)
        with session_scope(self.settings.database_url) as s:
            done = s.exec(
                update(Job)
                .where(
                    tuple_(col(Job.id), col(Job.lease_owner)).in_(held),
                    col(Job.state) == JobState.RUNNING,
                )
                .values(lease_expires_at=until)
            )
            return int(done.rowcount)

    def _loop(self) -> None:
        interval = self.settings.job_lease_seconds / 3
        while True:
            time.sleep(interval)
            try:
                self.renew()
            except Exception:  # the database away for a moment: the next round will do
                log.warning("could not renew job leases", exc_info=True)
