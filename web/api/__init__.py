"""The billing API (/api/v1): jobs and operations, customers and subscriptions as Google has
them, and drift, for billing systems with an API key."""

from typing import Any

from web.api import customers, drift, jobs, operations  # noqa: F401 - their routes register
from web.api.blueprint import bp
from web.api.blueprint import document_examples as _job_examples

__all__ = ["bp", "document_examples"]


def document_examples(app: Any) -> None:
    """The runnable named examples of the API document."""
    _job_examples(app)
    drift.document_examples(app)
