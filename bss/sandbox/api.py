"""What every Google API call goes through: token, enabled API, scope, quota, faults, log."""

from __future__ import annotations

import base64
import functools
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from flask import Response, g, request

from bss.sandbox import faults, partial, tokens
from bss.sandbox.errors import ApiError, DropConnection, json_response
from bss.sandbox.state import State, current_state

AUTH = "https://www.googleapis.com/auth/"
ORDER, ORDER_RO = AUTH + "apps.order", AUTH + "apps.order.readonly"
USER, USER_RO = AUTH + "admin.directory.user", AUTH + "admin.directory.user.readonly"
CUSTOMER, CUSTOMER_RO = (
    AUTH + "admin.directory.customer",
    AUTH + "admin.directory.customer.readonly",
)
GROUP, GROUP_RO = AUTH + "admin.directory.group", AUTH + "admin.directory.group.readonly"
GMAIL_SEND = (
    AUTH + "gmail.send",
    AUTH + "gmail.compose",
    AUTH + "gmail.modify",
    "https://mail.google.com/",
    AUTH + "gmail.addons.current.action.compose",
)

#: Scopes each method accepts, as listed in the discovery documents.
METHOD_SCOPES: dict[str, tuple[str, ...]] = {
    "reseller.customers.get": (ORDER, ORDER_RO),
    "reseller.subscriptions.get": (ORDER, ORDER_RO),
    "reseller.subscriptions.list": (ORDER, ORDER_RO),
    "directory.users.get": (USER, USER_RO),
    "directory.users.list": (USER, USER_RO, AUTH + "cloud-platform"),
    "directory.customers.get": (CUSTOMER, CUSTOMER_RO),
    "directory.groups.list": (GROUP, GROUP_RO),
    "gmail.users.messages.send": GMAIL_SEND,
    "reseller.resellernotify.register": (ORDER,),
    "reseller.resellernotify.unregister": (ORDER,),
    "reseller.resellernotify.getwatchdetails": (ORDER, ORDER_RO),
}
#: The service name and console title of each API, by method-id prefix.
APIS = {
    "reseller": ("reseller.googleapis.com", "Google Workspace Reseller API", (ORDER,)),
    "directory": ("admin.googleapis.com", "Admin SDK API", (USER,)),
    "licensing": (
        "licensing.googleapis.com",
        "Enterprise License Manager API",
        (AUTH + "apps.licensing",),
    ),
    "gmail": ("gmail.googleapis.com", "Gmail API", GMAIL_SEND),
    # Every pubsub.v1 method takes either scope.
    "pubsub": (
        "pubsub.googleapis.com",
        "Cloud Pub/Sub API",
        (AUTH + "pubsub", AUTH + "cloud-platform"),
    ),
}
ALL_APIS = tuple(service for service, _, _ in APIS.values())

_NO_CREDENTIALS = (
    "Request is missing required authentication credential. Expected OAuth 2 access token, "
    "login cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_BAD_CREDENTIALS = (
    "Request had invalid authentication credentials. Expected OAuth 2 access token, login "
    "cookie or other valid authentication credential. See "
    "https://developers.google.com/identity/sign-in/web/devconsole-project."
)
_REALM = 'Bearer realm="https://accounts.google.com/"'


@dataclass(frozen=True)
class Caller:
    """Who is calling: the account behind the token, the OAuth client and its project."""

    user: str
    client_id: str
    project: dict
    scopes: tuple[str, ...]


def caller() -> Caller:
    return g.caller


def method_scopes(method_id: str) -> tuple[str, ...]:
    return METHOD_SCOPES.get(method_id) or APIS[method_id.split(".", 1)[0]][2]


def authenticate(state: State, method_id: str) -> Caller:
    """Check the bearer token, the project's enabled APIs and the token's scopes."""
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    token = token or request.args.get("access_token", "")
    location = {"location": "Authorization", "locationType": "header"}
    if not token:
        raise ApiError(
            401,
            "required",
            _NO_CREDENTIALS,
            extra=location,
            headers={"WWW-Authenticate": _REALM},
            frontend=True,
        )
    record = tokens.bearer(state, token)
    if record is None:
        raise ApiError(
            401,
            "authError",
            _BAD_CREDENTIALS,
            extra=location,
            headers={"WWW-Authenticate": _REALM + ', error="invalid_token"'},
            frontend=True,
        )
    project = state.projects.get(record["project"])
    g.call.update(client_id=record["client_id"], project=record["project"], user=record["user"])
    service, title, _ = APIS[method_id.split(".", 1)[0]]
    if project is None or service not in project["enabled_apis"]:
        number = project["project_number"] if project else "0"
        url = f"https://console.developers.google.com/apis/api/{service}/overview?project={number}"
        raise ApiError(
            403,
            "accessNotConfigured",
            (
                f"{title} has not been used in project {number} before or it is disabled. Enable "
                f"it by visiting {url} then retry. If you enabled this API recently, wait a few "
                f"minutes for the action to propagate to our systems and retry."
            ),
            domain="usageLimits",
            extra={"extendedHelp": "https://console.developers.google.com"},
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "SERVICE_DISABLED",
                    "domain": "googleapis.com",
                    "metadata": {"service": service, "consumer": f"projects/{number}"},
                },
                {
                    "@type": "type.googleapis.com/google.rpc.Help",
                    "links": [
                        {"description": "Google developers console API activation", "url": url}
                    ],
                },
            ],
            frontend=True,
        )
    accepted = method_scopes(method_id)
    if not set(accepted) & set(record["scopes"]):
        raise ApiError(
            403,
            "insufficientPermissions",
            "Request had insufficient authentication scopes.",
            headers={
                "WWW-Authenticate": _REALM + ', error="insufficient_scope", '
                f'scope="{" ".join(accepted)}"'
            },
            details=[
                {
                    "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                    "reason": "ACCESS_TOKEN_SCOPE_INSUFFICIENT",
                    "domain": "googleapis.com",
                    "metadata": {"service": service, "method": method_id},
                }
            ],
            frontend=True,
        )
    return Caller(
        user=record["user"],
        client_id=record["client_id"],
        project=project,
        scopes=tuple(record["scopes"]),
    )


def api_method(method_id: str) -> Callable:
    """Route decorator: run the call through auth, quota, latency and faults, under the lock."""

    def decorate(view: Callable[..., Response]) -> Callable[..., Response]:
        @functools.wraps(view)
        def wrapper(**kwargs: Any) -> Response:
            state = current_state()
            g.call = {
                "method": method_id,
                "client_id": None,
                "project": None,
                "user": None,
                "fault": None,
            }
            partial.check(method_id)
            with state.lock:
                g.caller = authenticate(state, method_id)
                service = APIS[method_id.split(".", 1)[0]][0]
                faults.check_quota(state, g.caller.project, service)
                delay = faults.latency_for(state, method_id)
                rule = faults.take_fault(state, method_id, g.caller.project["project_id"])
            faults.pause(delay)
            if rule:
                g.call["fault"] = rule["kind"]
                if rule["kind"] == "error":
                    raise faults.fault_error(rule)
                if rule["kind"] == "drop":
                    raise DropConnection()
                if rule["kind"] == "timeout":
                    faults.pause(rule["seconds"])
            with state.lock:
                response = view(**kwargs)
            if rule and rule["kind"] == "applied_response_lost":
                raise DropConnection()
            return response

        return wrapper

    return decorate


# -- request and response helpers ---------------------------------------------------------


def body() -> dict:
    """The JSON request body (an empty object when there is none)."""
    if not request.get_data():
        return {}
    data = request.get_json(silent=True)
    if not isinstance(data, dict):
        raise ApiError(400, "parseError", "Invalid JSON payload received.")
    return data


def ok(data: dict) -> Response:
    return json_response(data)


def no_content() -> Response:
    return Response(status=204)


def max_results(default: int, maximum: int) -> int:
    raw = request.args.get("maxResults")
    if raw is None:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ApiError(
            400,
            "invalid",
            f"Invalid value '{raw}'. Values must be within the range: [1, {maximum}]",
        ) from None
    if not 1 <= value <= maximum:
        raise ApiError(
            400,
            "invalid",
            f"Invalid value '{raw}'. Values must be within the range: [1, {maximum}]",
        )
    return value


def page(items: list, *, default: int, maximum: int) -> tuple[list, str | None]:
    """One page of ``items`` for maxResults/pageToken, and the next page's token."""
    size = max_results(default, maximum)
    token = request.args.get("pageToken")
    start = 0
    if token:
        try:
            start = int(base64.urlsafe_b64decode(token.encode()).decode().split(":", 1)[1])
        except (ValueError, IndexError, UnicodeDecodeError):
            raise ApiError(400, "invalid", "Invalid page token.") from None
    chunk = items[start : start + size]
    following = start + size
    next_token = (
        base64.urlsafe_b64encode(f"offset:{following}".encode()).decode()
        if following < len(items)
        else None
    )
    return chunk, next_token
