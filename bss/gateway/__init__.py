"""The one way to Google. Every call passes through the Gateway (clients built once per thread,
retries, errors classified once, each call recorded); an instance's credentials, the access-token
cache shared by all processes, the OAuth flows (consent, code exchange, service accounts, ID
tokens) with their server-side `state`, the pacing of calls by each Cloud project's quotas
(a limiter in Redis shared by all workers), e-mail as a mail sender (the Gmail API, or Gmail's
SMTP server with XOAUTH2), and the counters Prometheus reads of it all."""

from bss.gateway import oauth
from bss.gateway.baseline import naive_customer_create
from bss.gateway.consent import (
    OAUTH_CALLBACK_PATH,
    callback_redirect_uri,
    check_answer,
    consented_identity,
    exchange,
    redirect_uris,
    spend_state,
    start_consent,
)
from bss.gateway.credentials import REQUIRED_SCOPES, instance_credentials
from bss.gateway.errors import classify_http_error
from bss.gateway.gateway import CallRecord, Gateway
from bss.gateway.mail import (
    GMAIL_SEND_SCOPE,
    MAIL_SCOPE,
    MailSent,
    send_as_sender,
    sender_token_expiry,
)
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
from bss.gateway.service_account_keys import KeySummary, parse_key, summarize_key
from bss.gateway.shared import cached_credentials, instance_gateway, shared_parts
from bss.gateway.tokens import TokenCache, fingerprint, token_cache_from_settings
from bss.gateway.transport import POST_REUSE_IDLE_S

__all__ = [
    "POST_REUSE_IDLE_S",
    "GMAIL_SEND_SCOPE",
    "MAIL_SCOPE",
    "MailSent",
    "OAUTH_CALLBACK_PATH",
    "KeySummary",
    "callback_redirect_uri",
    "check_answer",
    "consented_identity",
    "exchange",
    "parse_key",
    "redirect_uris",
    "spend_state",
    "start_consent",
    "summarize_key",
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
    "cached_credentials",
    "classify_http_error",
    "consume_state",
    "digest",
    "fingerprint",
    "instance_credentials",
    "instance_gateway",
    "naive_customer_create",
    "oauth",
    "pacer_factory",
    "pacer_for",
    "platform_service_account_email",
    "peek_state",
    "project_of",
    "quota_usage",
    "save_state",
    "send_as_sender",
    "sender_token_expiry",
    "shared_parts",
    "token_cache_from_settings",
    "verify_push_token",
]
