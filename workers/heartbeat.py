"""A middleware that tells operators this worker process is alive (bss.monitoring)."""

from __future__ import annotations

import logging
import os
import socket
import threading
import time

import dramatiq
import redis

from bss.monitoring import HEARTBEAT_INTERVAL_S, forget_heartbeat, record_heartbeat

log = logging.getLogger(__name__)


class Heartbeat(dramatiq.Middleware):
    """Writes a heartbeat to Redis every few seconds from each worker process."""

    def __init__(self, redis_url: str) -> None:
        self.redis_url = redis_url
        self.stop = threading.Event()

    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        name = f"{socket.gethostname()}:{os.getpid()}"
        info = {
            "host": socket.gethostname(),
            "pid": os.getpid(),
            "threads": worker.worker_threads,
            "started": time.time(),
            # Dramatiq's name for this process on Redis: the messages it took ahead are kept
            # under it, for the scheduler to put back if this process dies (bss.jobs.orphans).
            "broker_id": getattr(broker, "broker_id", None),
        }
        threading.Thread(
            target=self._beat, args=(name, info), daemon=True, name="bss-heartbeat"
        ).start()

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        self.stop.set()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        # A clean stop: Dramatiq has put back the messages this process held, so operators and
        # the scheduler stop counting it now rather than after HEARTBEAT_TIMEOUT_S of silence.
        name = f"{socket.gethostname()}:{os.getpid()}"
        try:
            forget_heartbeat(redis.Redis.from_url(self.redis_url, socket_timeout=5), name)
        except redis.RedisError:
            log.warning("heartbeat not withdrawn; it lapses by itself", exc_info=True)

    def _beat(self, name: str, info: dict) -> None:
        client = redis.Redis.from_url(self.redis_url, socket_timeout=5)
        while not self.stop.is_set():
            try:
                record_heartbeat(client, name, info)
            except redis.RedisError:  # Redis away for a moment: the next beat will do
                log.warning("heartbeat not recorded", exc_info=True)
            self.stop.wait(HEARTBEAT_INTERVAL_S)
