"""The one way to Google. Every call passes through the Gateway (clients built once per thread,
retries, errors classified once, each call recorded); an instance's credentials, the access-token
cache shared by all processes, the OAuth flows (consent, code exchange, service accounts, ID
tokens) with their server-side `state`, the pacing of calls by each Cloud project's quotas
(a limiter in Redis shared by all workers), and the counters Prometheus reads of it all."""

from bss.gateway import oauth
from bss.gateway.baseline import naive_customer_create
from bss.gateway.credentials import REQUIRED_SCOPES, instance_credentials
from bss.gateway.errors import classify_http_error
from bss.gateway.gateway import CallRecord, Gateway
from bss.gateway.oauth_states import (
    ConsumedState,
    consume_state,
    digest,
    peek_state,
    save_state,
)
from bss.gateway.pacing import (
    PACED_APIS,
    Pacer,
    instance_limits,
    pacer_factory,
    pacer_for,
    project_of,
)
from bss.gateway.pubsub import PubSubClient
from bss.gateway.push_tokens import (
    PushTokenRefused,
    platform_service_account_email,
    verify_push_token,
)
from bss.gateway.quota import QuotaKey, QuotaLimiter, QuotaUse, quota_usage
from bss.gateway.tokens import TokenCache, fingerprint, token_cache_from_settings

__all__ = [
    "PACED_APIS",
    "instance_limits",
    "REQUIRED_SCOPES",
    "CallRecord",
    "ConsumedState",
    "Gateway",
    "Pacer",
    "PubSubClient",
    "PushTokenRefused",
    "QuotaKey",
    "QuotaLimiter",
    "QuotaUse",
    "TokenCache",
    "classify_http_error",
    "consume_state",
    "digest",
    "fingerprint",
    "instance_credentials",
    "naive_customer_create",
    "oauth",
    "pacer_factory",
    "pacer_for",
    "platform_service_account_email",
    "peek_state",
    "project_of",
    "quota_usage",
    "save_state",
    "token_cache_from_settings",
    "verify_push_token",
]
