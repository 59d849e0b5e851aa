"""Settings: the one place that reads the environment."""

from __future__ import annotations

import functools
import ipaddress
from pathlib import Path
from typing import Literal
from urllib.parse import urlsplit

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# Google's real endpoints. Every one can be overridden, and GOOGLE_SANDBOX_URL points them all
# at one sandbox origin.
GOOGLE_AUTH_URI = "https://accounts.google.com/o/oauth2/v2/auth"
GOOGLE_TOKEN_URI = "https://oauth2.googleapis.com/token"  # noqa: S105
GOOGLE_REVOKE_URI = "https://oauth2.googleapis.com/revoke"
GOOGLE_OIDC_DISCOVERY_URL = "https://accounts.google.com/.well-known/openid-configuration"
GOOGLE_API_ROOTS = {
    "reseller": "https://reseller.googleapis.com/",
    "admin": "https://admin.googleapis.com/",
    "licensing": "https://licensing.googleapis.com/",
    "gmail": "https://gmail.googleapis.com/",
    "pubsub": "https://pubsub.googleapis.com/",
}
# Where Google publishes the keys that sign its ID tokens (Pub/Sub's push tokens among them).
GOOGLE_CERTS_URL = "https://www.googleapis.com/oauth2/v3/certs"
GOOGLE_ISSUERS = ("https://accounts.google.com", "accounts.google.com")
# Gmail's SMTP submission server: STARTTLS on 587, AUTH XOAUTH2 with an OAuth access token.
GOOGLE_SMTP_HOST = "smtp.gmail.com"
GOOGLE_SMTP_PORT = 587


class Settings(BaseSettings):
    """Configuration of every process, from the environment (and an optional `.env`)."""

    model_config = SettingsConfigDict(env_file=".env", extra="ignore")

    environment: str = Field("development", alias="BSS_ENV")
    home: Path = Field(Path("var"), alias="BSS_HOME")
    database_url: str = Field("", alias="DATABASE_URL")
    # SQLite only: "normal" (WAL's own advice) makes a commit a write to the log, not an fsync
    # (1.6 ms here, with the one write lock held), so a crashed or killed process loses nothing
    # but a power cut may lose the last transactions; "full" syncs each commit. PostgreSQL
    # keeps its own settings.
    sqlite_synchronous: Literal["normal", "full"] = Field("normal", alias="BSS_SQLITE_SYNCHRONOUS")
    redis_url: str = Field("", alias="REDIS_URL")
    # The Dramatiq broker: amqp://user:password@host:5672/vhost for RabbitMQ (or a redis:// URL
    # of its own). Empty: the Redis of REDIS_URL, which every setup needs anyway (token cache,
    # locks, worker heartbeats, rate limits).
    broker_url: str = Field("", alias="BSS_BROKER_URL")
    # Comma-separated Fernet keys; the first encrypts, all decrypt (rotation).
    secret_keys: str = Field("", alias="BSS_SECRET_KEYS")
    session_secret: str = Field("", alias="BSS_SESSION_SECRET")
    public_base_urls: str = Field("http://127.0.0.1:8000", alias="BSS_PUBLIC_BASE_URLS")
    # Proxies in front of the web app whose X-Forwarded-For/-Proto/-Host headers are trusted.
    trusted_proxies: int = Field(0, alias="BSS_TRUSTED_PROXIES")
    sign_in_rate_limit: str = Field("10 per 5 minutes", alias="BSS_SIGN_IN_RATE_LIMIT")
    # Request bodies larger than this are refused with 413, JSON nested deeper with 400, before
    # anything reads them.
    max_body_bytes: int = Field(1_048_576, alias="BSS_MAX_BODY_BYTES")
    max_json_depth: int = Field(32, alias="BSS_MAX_JSON_DEPTH")
    # The portal's own OAuth client for Sign in with Google (empty: the button is hidden).
    google_signin_client_id: str = Field("", alias="GOOGLE_SIGNIN_CLIENT_ID")
    google_signin_client_secret: str = Field("", alias="GOOGLE_SIGNIN_CLIENT_SECRET")
    portal_session_hours: float = Field(12.0, alias="BSS_PORTAL_SESSION_HOURS")

    google_sandbox_url: str = Field("", alias="GOOGLE_SANDBOX_URL")
    google_auth_uri: str = Field(GOOGLE_AUTH_URI, alias="GOOGLE_AUTH_URI")
    google_token_uri: str = Field(GOOGLE_TOKEN_URI, alias="GOOGLE_TOKEN_URI")
    google_revoke_uri: str = Field(GOOGLE_REVOKE_URI, alias="GOOGLE_REVOKE_URI")
    google_oidc_discovery_url: str = Field(
        GOOGLE_OIDC_DISCOVERY_URL, alias="GOOGLE_OIDC_DISCOVERY_URL"
    )
    google_reseller_root: str = Field(GOOGLE_API_ROOTS["reseller"], alias="GOOGLE_RESELLER_ROOT")
    google_admin_root: str = Field(GOOGLE_API_ROOTS["admin"], alias="GOOGLE_ADMIN_ROOT")
    google_licensing_root: str = Field(GOOGLE_API_ROOTS["licensing"], alias="GOOGLE_LICENSING_ROOT")
    google_gmail_root: str = Field(GOOGLE_API_ROOTS["gmail"], alias="GOOGLE_GMAIL_ROOT")
    google_pubsub_root: str = Field(GOOGLE_API_ROOTS["pubsub"], alias="GOOGLE_PUBSUB_ROOT")
    google_certs_url: str = Field(GOOGLE_CERTS_URL, alias="GOOGLE_CERTS_URL")
    google_http_timeout: float = Field(30.0, alias="GOOGLE_HTTP_TIMEOUT")
    # Gmail's SMTP submission server, for senders in SMTP XOAUTH2 mode (STARTTLS). With
    # GOOGLE_SANDBOX_URL and no GOOGLE_SMTP_HOST: the sandbox's host, at its port + 1.
    google_smtp_host: str = Field("", alias="GOOGLE_SMTP_HOST")
    google_smtp_port: int = Field(0, ge=0, le=65535, alias="GOOGLE_SMTP_PORT")
    # A PEM file of certificates to trust for that server besides the system's (the sandbox's
    # self-signed one in the demo and the tests). Empty: the system's trust store only.
    google_smtp_ca_file: str = Field("", alias="GOOGLE_SMTP_CA_FILE")

    job_max_attempts: int = Field(8, alias="BSS_JOB_MAX_ATTEMPTS")
    # A worker's hold on a job, renewed by the worker process while it lives: a dead worker's
    # job is taken over within this plus one sweep interval.
    job_lease_seconds: int = Field(15, alias="BSS_JOB_LEASE_SECONDS")
    job_retry_base_seconds: float = Field(2.0, alias="BSS_JOB_RETRY_BASE_SECONDS")
    job_retry_max_seconds: float = Field(600.0, alias="BSS_JOB_RETRY_MAX_SECONDS")
    sweep_interval_seconds: float = Field(5.0, alias="BSS_SWEEP_INTERVAL_SECONDS")
    # A queued job whose message has not been picked up after this long is sent again.
    resend_after_seconds: float = Field(60.0, alias="BSS_RESEND_AFTER_SECONDS")
    # Fair sharing of the workers: a distributor may have this many jobs (times its weight, at
    # most its own max_in_flight) sent to the workers at once; the rest wait in the database and
    # are sent as its jobs end. Set it to the messages all worker processes take at once, each
    # its threads and the 2 it takes ahead (dramatiq_queue_prefetch = threads + 2): a
    # distributor alone then keeps every thread busy, also while a released job is on its way to
    # a worker, and another's new job waits behind at most (slots - threads) of its jobs. 16 fits
    # the demo (1 process x 8 threads). Lower is fairer but leaves threads idle when one
    # distributor is alone; 0 turns fair sharing off (every job is sent as soon as accepted).
    fair_share_slots: int = Field(16, ge=0, alias="BSS_FAIR_SHARE_SLOTS")
    # A job attempt running longer than this is interrupted and retried.
    job_time_limit_seconds: int = Field(240, alias="BSS_JOB_TIME_LIMIT_SECONDS")
    # A long job (licenses for 1,000 users) gives its thread back after each chunk once it has
    # run this long, and continues from its progress when a worker is free: it is never cut by
    # the time limit while it makes progress, and does not hold a thread for long.
    job_slice_seconds: float = Field(30.0, alias="BSS_JOB_SLICE_SECONDS")
    # Google calls per second per Cloud project and API, shared by every worker (an instance's
    # `quotas` overrides them). Defaults from Google's "Limits and quotas" pages: Directory 2,400
    # queries per minute per user; License Manager 1 per second; Gmail 6,000 units per minute
    # per user, 100 per send; the Reseller API publishes none.
    quota_reseller: float = Field(5.0, gt=0, alias="BSS_QUOTA_RESELLER")
    quota_admin: float = Field(40.0, gt=0, alias="BSS_QUOTA_ADMIN")
    quota_licensing: float = Field(1.0, gt=0, alias="BSS_QUOTA_LICENSING")
    quota_gmail: float = Field(1.0, gt=0, alias="BSS_QUOTA_GMAIL")
    # Calls are paced to this share of the quota, so that calls landing at Google a little
    # early or late do not cross it.
    quota_headroom: float = Field(0.95, gt=0, le=1, alias="BSS_QUOTA_HEADROOM")
    # A call that must wait for quota longer than this gives its thread back: its job waits
    # (`waiting_quota`) and a delayed message brings it back.
    quota_max_sleep_seconds: float = Field(2.0, ge=0, alias="BSS_QUOTA_MAX_SLEEP_SECONDS")
    # Access tokens are reused until this many seconds before they expire.
    token_refresh_margin_seconds: int = Field(300, alias="BSS_TOKEN_REFRESH_MARGIN_SECONDS")
    webhook_max_attempts: int = Field(8, alias="BSS_WEBHOOK_MAX_ATTEMPTS")
    webhook_retry_base_seconds: float = Field(5.0, alias="BSS_WEBHOOK_RETRY_BASE_SECONDS")
    webhook_retry_max_seconds: float = Field(3600.0, alias="BSS_WEBHOOK_RETRY_MAX_SECONDS")
    webhook_timeout_seconds: float = Field(10.0, alias="BSS_WEBHOOK_TIMEOUT_SECONDS")
    # Comma-separated CIDRs that webhooks may reach besides the public internet (a receiver on
    # the private network; 127.0.0.0/8 for the demo and the tests). Empty: public addresses only.
    webhook_allowed_networks: str = Field("", alias="BSS_WEBHOOK_ALLOWED_NETWORKS")

    # Google telling us what changed (Reseller API notifications through Pub/Sub).
    # The platform's own Google service account (a JSON key file): it is named to
    # resellernotify.register, owns the Pub/Sub subscriptions (in the key's project), pulls, and
    # is the identity in the OIDC token of every push. Empty: notifications are off.
    events_service_account_file: str = Field("", alias="BSS_EVENTS_SERVICE_ACCOUNT_FILE")
    # The URL Google pushes to, and the audience its OIDC tokens must carry. Empty: the first
    # public base URL + /google/events.
    events_push_url: str = Field("", alias="BSS_EVENTS_PUSH_URL")
    # How often each instance is reconciled with Google (subscriptions.list, paged), in seconds;
    # 0 turns the scheduled sweep off (`bss reconcile` still works).
    reconcile_interval_seconds: float = Field(3600.0, ge=0, alias="BSS_RECONCILE_INTERVAL_SECONDS")
    # How often instances in pull mode pull their Pub/Sub subscription, in seconds.
    events_pull_interval_seconds: float = Field(5.0, gt=0, alias="BSS_EVENTS_PULL_INTERVAL_SECONDS")

    # E-mail notifications (bss.notify): a reminder of an alert still open (an instance that
    # needs re-authentication) this often; failed jobs told in one digest per this window; a
    # refresh token with a lifetime (a consent screen in Testing: 7 days) warned of this long
    # before it ends (day 5 of 7).
    alert_reminder_seconds: float = Field(86400.0, gt=0, alias="BSS_ALERT_REMINDER_SECONDS")
    failed_jobs_digest_seconds: float = Field(3600.0, gt=0, alias="BSS_FAILED_JOBS_DIGEST_SECONDS")
    token_expiry_warning_seconds: float = Field(
        172800.0, ge=0, alias="BSS_TOKEN_EXPIRY_WARNING_SECONDS"
    )
    mail_max_attempts: int = Field(8, ge=1, alias="BSS_MAIL_MAX_ATTEMPTS")
    mail_retry_base_seconds: float = Field(5.0, gt=0, alias="BSS_MAIL_RETRY_BASE_SECONDS")
    mail_retry_max_seconds: float = Field(3600.0, gt=0, alias="BSS_MAIL_RETRY_MAX_SECONDS")

    @field_validator("webhook_allowed_networks")
    @classmethod
    def _check_networks(cls, value: str) -> str:
        for part in value.split(","):
            if part.strip():
                ipaddress.ip_network(part.strip(), strict=False)  # a ValueError names the bad one
        return value

    @model_validator(mode="after")
    def _apply_sandbox(self) -> Settings:
        if self.google_sandbox_url:
            origin = self.google_sandbox_url.rstrip("/")
            self.google_auth_uri = f"{origin}/o/oauth2/v2/auth"
            self.google_token_uri = f"{origin}/token"
            self.google_revoke_uri = f"{origin}/revoke"
            self.google_oidc_discovery_url = f"{origin}/.well-known/openid-configuration"
            self.google_certs_url = f"{origin}/oauth2/v3/certs"
            for api in GOOGLE_API_ROOTS:
                setattr(self, f"google_{api}_root", f"{origin}/")
            if not self.google_smtp_host:
                parts = urlsplit(origin)
                self.google_smtp_host = parts.hostname or "127.0.0.1"
                self.google_smtp_port = self.google_smtp_port or (parts.port or 80) + 1
        if not self.google_smtp_host:
            self.google_smtp_host = GOOGLE_SMTP_HOST
        self.google_smtp_port = self.google_smtp_port or GOOGLE_SMTP_PORT
        if not self.database_url:
            self.database_url = f"sqlite:///{self.home / 'bss.db'}"
        return self

    @property
    def is_production(self) -> bool:
        return self.environment == "production"

    @property
    def base_urls(self) -> list[str]:
        return [u.strip().rstrip("/") for u in self.public_base_urls.split(",") if u.strip()]

    @property
    def push_url(self) -> str:
        """Where Google pushes notifications: the audience their OIDC tokens must carry."""
        return self.events_push_url or f"{self.base_urls[0]}/google/events"

    def api_root(self, api: str) -> str:
        """The root URL that API `api` (reseller, admin, licensing, gmail, pubsub) is under."""
        return str(getattr(self, f"google_{api}_root"))


@functools.cache
def get_settings() -> Settings:
    """The process-wide settings, read once."""
    return Settings()
