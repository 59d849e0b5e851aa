"""The billing API (/api/v1): jobs and operations, for billing systems with an API key."""

from web.api import jobs, operations  # noqa: F401 - their routes register on the blueprint
from web.api.blueprint import bp, document_examples

__all__ = ["bp", "document_examples"]
