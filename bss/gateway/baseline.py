"""The yardstick `bss bench --baseline naive` measures us against: what a script glued around
Google's client library does for each order, in a loop. It builds the client, refreshes the
access token, and makes customer.create's two calls (customers.get, then customers.insert when
Google does not know the domain), with none of our safety: no row first, no lease, no
checkpoint, no timeline, no retry, no pacing. It lives in the gateway because only the gateway
talks to Google's libraries; nothing in the service calls it."""

from __future__ import annotations

from typing import Any

import google.oauth2.credentials
import httplib2
from google.auth.transport.requests import Request
from google_auth_httplib2 import AuthorizedHttp
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bss.settings import Settings


def naive_customer_create(
    settings: Settings,
    *,
    client_id: str,
    client_secret: str,
    refresh_token: str,
    body: dict[str, Any],
) -> int:
    """One order the naive way; the number of Google API calls made (1 or 2)."""
    credentials = google.oauth2.credentials.Credentials(
        None,
        refresh_token=refresh_token,
        client_id=client_id,
        client_secret=client_secret,
        token_uri=settings.google_token_uri,
    )
    credentials.refresh(Request())
    http = AuthorizedHttp(credentials, http=httplib2.Http(timeout=settings.google_http_timeout))
    service = build(
        "reseller",
        "v1",
        http=http,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": settings.google_reseller_root},
    )
    try:
        service.customers().get(customerId=body["customerDomain"]).execute()
        return 1
    except HttpError as exc:
        if exc.resp.status != 404:
            raise
    service.customers().insert(body=body).execute()
    return 2
