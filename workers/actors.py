"""Thin actors: receive an id, hand it to bss, let bss record the outcome."""

from __future__ import annotations

import functools
import os
import socket
import threading

import dramatiq

from bss.broker import JOBS_QUEUE, RUN_JOB_ACTOR, send_job
from bss.crypto import vault_from_settings
from bss.runner import JobRunner
from bss.settings import get_settings
from workers.broker import broker  # sets the broker before the actors below are declared

WORKER_NAME = f"{socket.gethostname()}:{os.getpid()}"


@functools.cache
def _runner() -> JobRunner:
    settings = get_settings()
    return JobRunner(
        settings=settings,
        vault=vault_from_settings(settings),
        resend=lambda job_id, delay_ms: send_job(broker, job_id, delay_ms=delay_ms),
    )


@dramatiq.actor(
    actor_name=RUN_JOB_ACTOR,
    queue_name=JOBS_QUEUE,
    # Retries and backoff are the job engine's (recorded on the job), not the broker's.
    max_retries=0,
    time_limit=get_settings().job_lease_seconds * 1000,
)
def run_job(job_id: str) -> None:
    """Run one provisioning job by id."""
    _runner().run(job_id, worker=f"{WORKER_NAME}:{threading.current_thread().name}")
