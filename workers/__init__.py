"""Dramatiq workers: `dramatiq workers` (or `bss worker`) imports this package.

Importing it sets the broker from the settings and declares the actors; nothing connects until
the worker starts consuming.
"""

from workers.actors import deliver_webhook, run_job
from workers.broker import broker

__all__ = ["broker", "deliver_webhook", "run_job"]
