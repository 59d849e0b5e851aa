"""The Dramatiq broker of the worker processes, built by bss from the settings."""

from __future__ import annotations

import logging

import dramatiq
from dramatiq.middleware.prometheus import Prometheus

from bss.broker import describe_broker, make_broker
from bss.settings import get_settings
from workers.heartbeat import Heartbeat

broker = make_broker(get_settings())
logging.getLogger(__name__).info("broker: %s", describe_broker(get_settings()))
broker.add_middleware(Heartbeat(get_settings().redis_url))  # on Redis, whatever the broker
# Dramatiq's own metrics, and ours (bss/gateway/metrics.py), on `dramatiq_prom_port` (default 9191).
broker.add_middleware(Prometheus())
dramatiq.set_broker(broker)
