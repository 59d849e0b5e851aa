"""The one gateway through which every Google call passes."""

from bss.gateway.errors import classify_http_error
from bss.gateway.gateway import CallRecord, Gateway

__all__ = ["CallRecord", "Gateway", "classify_http_error"]
