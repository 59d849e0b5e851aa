"""Builds Google clients once per thread, authorizes calls, classifies errors, retries briefly."""

from __future__ import annotations

import http.client
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import google_auth_httplib2
import httplib2
from google.auth import exceptions as auth_exceptions
from google.auth.credentials import Credentials
from googleapiclient.discovery import build
from googleapiclient.errors import BatchError, HttpError
from googleapiclient.http import BatchHttpRequest
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    wait_random_exponential,
)

from bss.errors import (
    GoogleError,
    PermanentGoogleError,
    QuotaWait,
    TransientGoogleError,
)
from bss.gateway import metrics
from bss.gateway.credentials import token_uri
from bss.gateway.errors import classify_http_error, is_rate_limit, refresh_error
from bss.gateway.pacing import CallPacer
from bss.gateway.resources import Collections
from bss.gateway.transport import thread_http
from bss.settings import Settings

# (discovery name, version) of each API, by the short name settings use for its root.
APIS = {
    "reseller": ("reseller", "v1"),
    "admin": ("admin", "directory_v1"),
    "licensing": ("licensing", "v1"),
    "gmail": ("gmail", "v1"),
    "pubsub": ("pubsub", "v1"),  # the platform's own subscriptions to Reseller notifications
}

NETWORK_ERRORS = (
    socket.timeout,
    TimeoutError,
    ConnectionError,
    http.client.HTTPException,
    httplib2.HttpLib2Error,
    OSError,
)

_local = threading.local()

# Calls that create something each time they are sent; everything else is safe to repeat
# (gets, lists, absolute seat counts, plan and renewal settings, suspend/activate, deletes).
NON_IDEMPOTENT = (".insert", ".send")
RATE_LIMITED = (429, 403)

# Google accepts up to 1000 calls in one batch (Gmail 100); smaller batches keep one failed
# batch cheap to redo.
BATCH_SIZE = 100


@dataclass(frozen=True)
class BatchOutcome:
    """One call of a batch: Google's answer, or the classified error."""

    response: Any = None
    error: GoogleError | None = None


@dataclass(frozen=True)
class CallRecord:
    """One Google call as it goes on a job's timeline: never a secret."""

    method: str
    status: int | None
    reason: str | None
    duration_ms: int
    attempt: int


def _thread_service(api: str, root: str, timeout: float) -> Any:
    """The discovery-built client for `api` at `root`, built once per thread."""
    cache: dict[tuple[str, str], Any] = _local.__dict__.setdefault("services", {})
    key = (api, root)
    if key not in cache:
        name, version = APIS[api]
        cache[key] = Collections(
            build(
                name,
                version,
                http=thread_http(timeout),
                static_discovery=True,
                cache_discovery=False,
                client_options={"api_endpoint": root},
            )
        )
    return cache[key]


def _status_of(exc: BaseException) -> tuple[int | None, str | None]:
    if isinstance(exc, GoogleError):
        return exc.status, exc.reason
    return None, type(exc).__name__


class Gateway:
    """Google calls on behalf of one instance's credentials.

    `record` receives a CallRecord for every attempt, so the job's timeline shows each call;
    `pacer` (None: no pacing) paces every call, retries included, by the instance's quotas.
    """

    def __init__(
        self,
        *,
        settings: Settings,
        credentials: Credentials,
        record: Callable[[CallRecord], None] | None = None,
        attempts: int = 3,
        max_wait: float = 4.0,
        pacer: CallPacer | None = None,
    ) -> None:
        self._settings = settings
        self._pacer = pacer
        self._credentials = credentials
        timeline = record or (lambda _rec: None)

        def _record(call: CallRecord) -> None:
            timeline(call)
            metrics.google_call(call.method, call.status, call.duration_ms / 1000)

        self._record = _record
        self._attempts = attempts
        self._max_wait = max_wait

    def service(self, api: str) -> Any:
        """The client for `api` (reseller, admin, licensing, gmail)."""
        return _thread_service(
            api, self._settings.api_root(api), self._settings.google_http_timeout
        )

    def calls_per_chunk(self, api: str) -> int:
        """How many calls of `api` to send as one batch (at most BATCH_SIZE).

        A batch's calls reach Google at once while the pacer spreads single calls evenly, so a
        batch after a call may put more calls in one second than the quota allows. A batch is
        kept within the headroom the pacer leaves (5 % of the quota: 1 call at 1 or 5 calls/s,
        3 at 40, 51 at 1,000): what Google counts in any second stays within its quota.
        """
        limit = self._pacer.limit(api) if self._pacer else None
        if limit is None:
            return BATCH_SIZE
        headroom = self._settings.quota_headroom
        return max(1, min(BATCH_SIZE, int(limit * (1 - headroom)) + 1))

    def _paced(self, api: str, n: int = 1, *, method: str = "") -> None:
        if self._pacer is not None:
            # A send cannot be checked for afterwards: a job stopped before it would not know
            # whether it went out (and would not send it again), so it waits its turn here.
            self._pacer.before_call(api, n, give_back=not method.endswith(".send"))

    def _rate_limited(self, api: str, errors: list[GoogleError]) -> None:
        limited = [getattr(e, "retry_after", None) or 0 for e in errors if is_rate_limit(e)]
        if self._pacer is not None and limited:
            self._pacer.rate_limited(api, max(limited) or None)

    def call(self, method: str, request_of: Callable[[Any], Any], api: str | None = None) -> Any:
        """Run `request_of(service)` with this instance's credentials.

        `method` is Google's method id (`reseller.customers.get`); transient failures are retried
        a few times here, then raised as TransientGoogleError for the job engine to reschedule.
        """
        api = api or method.split(".", 1)[0].replace("directory", "admin")
        idempotent = not method.endswith(NON_IDEMPOTENT)

        def worth_retrying(exc: BaseException) -> bool:
            # A write that may have been applied is not repeated here: the job retries it from
            # its step, which checks Google first. Rate limits are refused before any change.
            return isinstance(exc, TransientGoogleError) and (
                idempotent or exc.status in RATE_LIMITED
            )

        retrying = Retrying(
            retry=retry_if_exception(worth_retrying),
            stop=stop_after_attempt(self._attempts),
            wait=wait_random_exponential(multiplier=0.5, max=self._max_wait),
            reraise=True,
            before_sleep=self._before_sleep,
        )
        for attempt in retrying:
            with attempt:
                return self._call_once(method, request_of, api, attempt.retry_state.attempt_number)
        raise AssertionError("unreachable")  # pragma: no cover

    def get_or_none(self, method: str, request_of: Callable[[Any], Any]) -> Any:
        """Like `call` for a read, but None when Google answers 404."""
        try:
            return self.call(method, request_of)
        except PermanentGoogleError as exc:
            if exc.status == 404:
                return None
            raise

    def batch(
        self,
        method: str,
        requests_of: dict[str, Callable[[Any], Any]],
        *,
        api: str | None = None,
    ) -> dict[str, BatchOutcome]:
        """Send many calls of `method` as Google batch requests; an outcome per key.

        Each call is recorded on the timeline. A failure of the whole batch (network, 5xx on the
        batch itself) is raised as for `call`; failures of single calls are returned.
        """
        api = api or method.split(".", 1)[0].replace("directory", "admin")
        outcomes: dict[str, BatchOutcome] = {}
        keys = list(requests_of)
        size = self.calls_per_chunk(api)
        for start in range(0, len(keys), size):
            chunk = {k: requests_of[k] for k in keys[start : start + size]}
            outcomes.update(self._batch_once(method, chunk, api))
        return outcomes

    def _batch_once(
        self, method: str, chunk: dict[str, Callable[[Any], Any]], api: str
    ) -> dict[str, BatchOutcome]:
        service = self.service(api)
        batch = BatchHttpRequest(batch_uri=self._settings.api_root(api) + "batch")
        outcomes: dict[str, BatchOutcome] = {}
        started = time.monotonic()

        def collect(request_id: str, response: Any, exception: Exception | None) -> None:
            key = names[int(request_id)]
            status: int | None
            reason: str | None
            if exception is None:
                outcomes[key] = BatchOutcome(response=response)
                status, reason = 200, None
            else:
                err = (
                    classify_http_error(exception, method)
                    if isinstance(exception, HttpError)
                    else TransientGoogleError(str(exception), method=method)
                )
                outcomes[key] = BatchOutcome(error=err)
                status, reason = err.status, err.reason
            self._record(
                CallRecord(
                    f"{method} (batch)", status, reason, int((time.monotonic() - started) * 1000), 1
                )
            )

        # Short ids: Content-IDs travel in MIME headers, where long values get folded.
        names = dict(enumerate(chunk))
        requests = [request_of(service) for request_of in chunk.values()]
        http = thread_http(self._settings.google_http_timeout)
        authed = google_auth_httplib2.AuthorizedHttp(self._credentials, http=http)
        try:
            # Each part carries the token itself: the parts' requests were built without
            # credentials (clients are shared per thread), so the library would not add it.
            if not self._credentials.valid:
                self._credentials.refresh(google_auth_httplib2.Request(http))
            self._paced(api, len(chunk))  # each call of a batch counts against the quota
            started = time.monotonic()
            for n, request in enumerate(requests):
                self._credentials.apply(request.headers)
                batch.add(request, callback=collect, request_id=str(n))
            batch.execute(http=authed)
        except HttpError as exc:
            err = classify_http_error(exc, f"{method} (batch)")
            self._record(CallRecord("batch", err.status, err.reason, 0, 1))
            self._rate_limited(api, [err])
            raise err from exc
        except BatchError as exc:
            self._record(CallRecord("batch", None, "BatchError", 0, 1))
            raise TransientGoogleError(f"Google's batch answer was malformed: {exc}") from exc
        except auth_exceptions.RefreshError as exc:
            raise refresh_error(exc, method) from exc
        except auth_exceptions.TransportError as exc:
            raise TransientGoogleError(
                f"Google's token endpoint {token_uri(self._credentials)} did not answer: {exc}",
                method=method,
            ) from exc
        except NETWORK_ERRORS as exc:
            self._record(CallRecord("batch", None, type(exc).__name__, 0, 1))
            raise TransientGoogleError(
                f"Network error calling {self._settings.api_root(api)} ({type(exc).__name__})",
                method=method,
            ) from exc
        self._rate_limited(api, [o.error for o in outcomes.values() if o.error is not None])
        return outcomes

    def _before_sleep(self, state: RetryCallState) -> None:
        exc = state.outcome.exception() if state.outcome else None
        if isinstance(exc, TransientGoogleError) and exc.retry_after and exc.retry_after > 60:
            raise exc  # a daily limit: not worth waiting in-process

    def _call_once(self, method: str, request_of: Callable[[Any], Any], api: str, n: int) -> Any:
        # The client (built on a thread's first call) and the token come first, so that the
        # call goes out right when its turn comes. Every attempt waits its turn.
        request = request_of(self.service(api))
        http = thread_http(self._settings.google_http_timeout)
        started = time.monotonic()
        status: int | None = 200
        reason: str | None = None
        try:
            if not self._credentials.valid:
                self._credentials.refresh(google_auth_httplib2.Request(http))
            self._paced(api, method=method)
            started = time.monotonic()
            authed = google_auth_httplib2.AuthorizedHttp(self._credentials, http=http)
            return request.execute(http=authed, num_retries=0)
        except QuotaWait:
            status = None  # no call went out: nothing to record
            raise
        except HttpError as exc:
            err = classify_http_error(exc, method)
            status, reason = err.status, err.reason
            self._rate_limited(api, [err])
            raise err from exc
        except auth_exceptions.RefreshError as exc:
            err = refresh_error(exc, method)
            status, reason = _status_of(err)
            raise err from exc
        except auth_exceptions.TransportError as exc:
            status, reason = None, "transport_error"
            raise TransientGoogleError(
                f"Google's token endpoint {token_uri(self._credentials)} did not answer: {exc}",
                method=method,
            ) from exc
        except NETWORK_ERRORS as exc:
            status, reason = None, type(exc).__name__
            raise TransientGoogleError(
                f"Network error calling {self._settings.api_root(api)} ({type(exc).__name__})",
                method=method,
            ) from exc
        finally:
            if status is not None or reason is not None:
                self._record(
                    CallRecord(method, status, reason, int((time.monotonic() - started) * 1000), n)
                )
