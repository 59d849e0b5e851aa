"""Cloud Pub/Sub, as far as Reseller notifications need it: topics, subscriptions, pull, ack.

Topics exist only as Reseller API watches make them (bss.sandbox.notifications). A message
published to a topic is copied to each subscription on it that exists at that moment, as Pub/Sub
does; it stays until acknowledged or for the retention period (7 days on the sandbox clock).
Pull leases a message for the subscription's ack deadline (sandbox clock); an unacknowledged
message comes back after it. Push delivery is bss.sandbox.pubsub_push.
"""

from __future__ import annotations

import base64
import json
import re

from flask import Blueprint, Response

from bss.sandbox.api import api_method, body, caller, ok
from bss.sandbox.clock import rfc3339
from bss.sandbox.errors import ApiError
from bss.sandbox.state import State, current_state

bp = Blueprint("pubsub", __name__, url_prefix="/v1/projects")

#: Pub/Sub's default and bounds for ackDeadlineSeconds.
ACK_DEADLINE, ACK_DEADLINE_MIN, ACK_DEADLINE_MAX = 10, 10, 600
#: Seconds an unacknowledged message is kept (Pub/Sub's default messageRetentionDuration).
RETENTION_SECONDS = 7 * 24 * 3600
#: Pub/Sub's limit on maxMessages in one pull.
MAX_PULL = 1000
NAME_RE = re.compile(r"^[A-Za-z][A-Za-z0-9\-_.~+%]{2,254}$")
NOT_AUTHORIZED = "User not authorized to perform this action."


def _error(code: int, message: str) -> ApiError:
    """Pub/Sub's error; the body's status is the code's (400 INVALID_ARGUMENT, 403, 404, 409)."""
    reason = {400: "badRequest", 403: "forbidden", 404: "notFound", 409: "alreadyExists"}[code]
    return ApiError(code, reason, message)


def watch_of_topic(state: State, topic: str) -> dict | None:
    return next((w for w in state.watches.values() if w["topic"] == topic), None)


def subscription_view(record: dict) -> dict:
    """The Subscription resource as Pub/Sub answers it."""
    view = {
        "name": record["name"],
        "topic": record["topic"],
        "pushConfig": record["pushConfig"],
        "ackDeadlineSeconds": record["ackDeadlineSeconds"],
        "messageRetentionDuration": f"{RETENTION_SECONDS}s",
        "expirationPolicy": {"ttl": "2678400s"},
        "state": "ACTIVE",
    }
    if record.get("retryPolicy"):
        view["retryPolicy"] = record["retryPolicy"]
    return view


def create_subscription(
    state: State,
    *,
    name: str,
    topic: str,
    push_config: dict | None,
    ack_deadline: int = ACK_DEADLINE,
    retry_policy: dict | None = None,
) -> dict:
    """Store a subscription (checked by the caller); it gets what is published from now on."""
    record = {
        "name": name,
        "topic": topic,
        "pushConfig": push_config or {},
        "ackDeadlineSeconds": ack_deadline,
        "retryPolicy": retry_policy,
        "created": state.clock.now(),
        # Test knobs (POST /_sandbox/pubsub/subscriptions/<name>): see bss.sandbox.pubsub_push.
        "paused": False,
        "duplicate": 0,
        "reorder": 0,
    }
    state.pubsub_subscriptions[name] = record
    return record


def publish(state: State, topic: str, data: dict, attributes: dict[str, str]) -> str | None:
    """Publish a JSON message on ``topic``: one copy per subscription; its messageId."""
    targets = [s for s in state.pubsub_subscriptions.values() if s["topic"] == topic]
    if not targets:
        return None
    message_id = state.random_digits(16)
    now = state.clock.now()
    message = {
        "data": base64.b64encode(json.dumps(data, separators=(",", ":")).encode()).decode(),
        "messageId": message_id,
        "publishTime": rfc3339(now),
        "attributes": dict(attributes),
    }
    for sub in targets:
        held = sub["reorder"] > 0
        if held:
            sub["reorder"] -= 1
        state.pubsub_messages[f"{sub['name']}|{message_id}"] = {
            "subscription": sub["name"],
            "message": message,
            "published": now,
            "seq": state.next_number(),
            "attempts": 0,
            "next_push": 0.0,  # real time of the next push attempt
            "lease_until": 0.0,  # sandbox time a pulled message is leased until
            "ack_id": None,
            "held": held,
        }
    return message_id


def pending(state: State, name: str) -> list[dict]:
    """The subscription's unacknowledged messages, oldest first."""
    found = [m for m in state.pubsub_messages.values() if m["subscription"] == name]
    return sorted(found, key=lambda m: m["seq"])


def expire(state: State) -> None:
    """Drop messages past the retention period (sandbox clock)."""
    cutoff = state.clock.now() - RETENTION_SECONDS
    for key in [k for k, m in state.pubsub_messages.items() if m["published"] < cutoff]:
        del state.pubsub_messages[key]


def delete_subscription(state: State, name: str) -> None:
    del state.pubsub_subscriptions[name]
    for key in [k for k, m in state.pubsub_messages.items() if m["subscription"] == name]:
        del state.pubsub_messages[key]


def pull(state: State, name: str, max_messages: int) -> list[dict]:
    """Lease up to ``max_messages`` messages for the ack deadline; each gets a new ackId."""
    expire(state)
    sub = state.pubsub_subscriptions[name]
    now = state.clock.now()
    received: list[dict] = []
    for message in pending(state, name):
        if len(received) >= max_messages:
            break
        if message["lease_until"] > now:
            continue
        message["ack_id"] = state.random_token(40)
        message["lease_until"] = now + sub["ackDeadlineSeconds"]
        message["attempts"] += 1
        received.append({"ackId": message["ack_id"], "message": message["message"]})
    return received


def acknowledge(state: State, name: str, ack_ids: list[str]) -> None:
    """Forget the messages whose current ackId is given; stale or unknown ids are ignored."""
    wanted = set(ack_ids)
    for message in pending(state, name):
        if message["ack_id"] in wanted:
            del state.pubsub_messages[f"{name}|{message['message']['messageId']}"]


# -- the REST API (pubsub.v1 discovery document) -----------------------------------------


def _own_subscription(state: State, project: str, sub: str) -> dict:
    name = f"projects/{project}/subscriptions/{sub}"
    if caller().project["project_id"] != project:
        raise _error(403, NOT_AUTHORIZED)
    record = state.pubsub_subscriptions.get(name)
    if record is None:
        raise _error(404, f"Resource not found (resource={sub}).")
    return record


def _ack_deadline(raw: object) -> int:
    if raw is None:
        return ACK_DEADLINE
    if not isinstance(raw, int) or not ACK_DEADLINE_MIN <= raw <= ACK_DEADLINE_MAX:
        raise _error(
            400,
            f"Invalid ack deadline given: {raw}. The minimum deadline is {ACK_DEADLINE_MIN} "
            f"and the maximum is {ACK_DEADLINE_MAX}.",
        )
    return raw


@bp.put("/<project>/subscriptions/<sub>")
@api_method("pubsub.projects.subscriptions.create")
def create(project: str, sub: str) -> Response:
    """Subscribe to a Reseller topic; only a service account the reseller registered may."""
    state = current_state()
    data = body()
    name = f"projects/{project}/subscriptions/{sub}"
    if not NAME_RE.match(sub) or sub.lower().startswith("goog"):
        raise _error(400, f"Invalid [subscriptions] name: ({name})")
    topic = data.get("topic")
    if not isinstance(topic, str) or not topic:
        raise _error(400, "Invalid [topics] name: ()")
    watch = watch_of_topic(state, topic)
    if watch is None:
        raise _error(404, f"Resource not found (resource={topic.rsplit('/', 1)[-1]}).")
    me = caller()
    if me.project["project_id"] != project or me.user not in watch["service_accounts"]:
        raise _error(403, NOT_AUTHORIZED)
    push = data.get("pushConfig") or {}
    if not isinstance(push, dict):
        raise _error(400, "Invalid pushConfig")
    endpoint = push.get("pushEndpoint")
    if endpoint and not str(endpoint).startswith(("https://", "http://")):
        raise _error(400, f"Invalid push endpoint given (endpoint={endpoint}).")
    oidc = push.get("oidcToken")
    if oidc is not None and (not isinstance(oidc, dict) or not oidc.get("serviceAccountEmail")):
        raise _error(400, "pushConfig.oidcToken needs serviceAccountEmail")
    deadline = _ack_deadline(data.get("ackDeadlineSeconds"))
    if name in state.pubsub_subscriptions:
        raise _error(409, "Resource already exists in the project.")
    retry = data.get("retryPolicy") if isinstance(data.get("retryPolicy"), dict) else None
    record = create_subscription(
        state, name=name, topic=topic, push_config=push, ack_deadline=deadline, retry_policy=retry
    )
    return ok(subscription_view(record))


@bp.get("/<project>/subscriptions/<sub>")
@api_method("pubsub.projects.subscriptions.get")
def get(project: str, sub: str) -> Response:
    return ok(subscription_view(_own_subscription(current_state(), project, sub)))


@bp.get("/<project>/subscriptions")
@api_method("pubsub.projects.subscriptions.list")
def list_subscriptions(project: str) -> Response:
    state = current_state()
    if caller().project["project_id"] != project:
        raise _error(403, NOT_AUTHORIZED)
    prefix = f"projects/{project}/subscriptions/"
    found = [
        subscription_view(s)
        for name, s in sorted(state.pubsub_subscriptions.items())
        if name.startswith(prefix)
    ]
    return ok({"subscriptions": found} if found else {})


@bp.delete("/<project>/subscriptions/<sub>")
@api_method("pubsub.projects.subscriptions.delete")
def delete(project: str, sub: str) -> Response:
    state = current_state()
    delete_subscription(state, _own_subscription(state, project, sub)["name"])
    return ok({})


@bp.post("/<project>/subscriptions/<sub>:pull")
@api_method("pubsub.projects.subscriptions.pull")
def pull_messages(project: str, sub: str) -> Response:
    state = current_state()
    record = _own_subscription(state, project, sub)
    if record["pushConfig"].get("pushEndpoint"):
        raise _error(400, "The subscription is a push subscription.")
    raw = body().get("maxMessages")
    if not isinstance(raw, int) or not 1 <= raw <= MAX_PULL:
        raise _error(400, "maxMessages must be between 1 and 1000.")
    received = pull(state, record["name"], raw)
    return ok({"receivedMessages": received} if received else {})


@bp.post("/<project>/subscriptions/<sub>:acknowledge")
@api_method("pubsub.projects.subscriptions.acknowledge")
def acknowledge_messages(project: str, sub: str) -> Response:
    state = current_state()
    record = _own_subscription(state, project, sub)
    ack_ids = body().get("ackIds")
    if not isinstance(ack_ids, list) or not ack_ids:
        raise _error(400, "No ack ids specified.")
    acknowledge(state, record["name"], [str(a) for a in ack_ids])
    return ok({})
