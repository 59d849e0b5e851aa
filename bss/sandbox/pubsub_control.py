"""The control API's Pub/Sub side: a shortcut to subscribe, a look inside, and test knobs."""

from __future__ import annotations

import base64
import json

from flask import Blueprint, Response, current_app

from bss.sandbox import pubsub
from bss.sandbox.control import payload
from bss.sandbox.errors import ControlError, json_response
from bss.sandbox.state import State, current_state

bp = Blueprint("pubsub_control", __name__, url_prefix="/_sandbox/pubsub")

KNOBS = ("paused", "duplicate", "reorder", "release")


def _wake() -> None:
    pusher = current_app.extensions.get("sandbox_pusher")
    if pusher is not None:
        pusher.wake.set()


def _find(state: State, name: str) -> dict:
    """A subscription by full name or by its last segment."""
    record = state.pubsub_subscriptions.get(name)
    if record is None:
        matches = [s for n, s in state.pubsub_subscriptions.items() if n.rsplit("/", 1)[-1] == name]
        record = matches[0] if len(matches) == 1 else None
    if record is None:
        raise ControlError(404, f"no subscription {name!r}")
    return record


def subscription_summary(state: State, record: dict) -> dict:
    messages = pubsub.pending(state, record["name"])
    return dict(
        pubsub.subscription_view(record),
        paused=record["paused"],
        duplicate=record["duplicate"],
        reorder=record["reorder"],
        pending=[
            {
                "messageId": m["message"]["messageId"],
                "publishTime": m["message"]["publishTime"],
                "attributes": m["message"]["attributes"],
                "data": json.loads(base64.b64decode(m["message"]["data"])),
                "attempts": m["attempts"],
                "held": m["held"],
            }
            for m in messages
        ],
    )


def pubsub_view(state: State) -> dict:
    """Topics (watches), subscriptions and their pending messages."""
    return {
        "topics": [
            {"reseller": domain, "topic": w["topic"], "service_accounts": w["service_accounts"]}
            for domain, w in state.watches.items()
        ],
        "subscriptions": [
            subscription_summary(state, s) for s in state.pubsub_subscriptions.values()
        ],
    }


@bp.get("")
def overview() -> Response:
    state = current_state()
    with state.lock:
        return json_response(pubsub_view(state))


@bp.post("/subscriptions")
def create() -> Response:
    """{topic, name?, push_endpoint?, audience?, service_account?, ack_deadline_seconds?}."""
    data = payload()
    topic = data.get("topic")
    state = current_state()
    with state.lock:
        watch = pubsub.watch_of_topic(state, topic) if isinstance(topic, str) else None
        if watch is None or not isinstance(topic, str):
            raise ControlError(404, f"no topic {topic!r} (resellernotify.register makes one)")
        short = data.get("name") or f"sandbox-{state.next_number()}"
        if not isinstance(short, str) or not pubsub.NAME_RE.match(short):
            raise ControlError(400, f"name {short!r} is not a Pub/Sub subscription name")
        name = short if short.startswith("projects/") else f"projects/sandbox/subscriptions/{short}"
        if name in state.pubsub_subscriptions:
            raise ControlError(409, f"{name} exists already")
        deadline = data.get("ack_deadline_seconds", pubsub.ACK_DEADLINE)
        if not isinstance(deadline, int) or not 10 <= deadline <= 600:
            raise ControlError(400, "ack_deadline_seconds must be 10..600")
        endpoint = data.get("push_endpoint")
        push: dict = {}
        if endpoint:
            if not isinstance(endpoint, str) or not endpoint.startswith(("http://", "https://")):
                raise ControlError(400, "push_endpoint must be an http(s) URL")
            push["pushEndpoint"] = endpoint
            account = data.get("service_account") or next(iter(watch["service_accounts"]), None)
            if account:
                push["oidcToken"] = {
                    "serviceAccountEmail": account,
                    "audience": data.get("audience") or endpoint,
                }
        record = pubsub.create_subscription(
            state, name=name, topic=topic, push_config=push, ack_deadline=deadline
        )
        return json_response(subscription_summary(state, record))


@bp.get("/subscriptions/<path:name>")
def get(name: str) -> Response:
    state = current_state()
    with state.lock:
        return json_response(subscription_summary(state, _find(state, name)))


@bp.delete("/subscriptions/<path:name>")
def delete(name: str) -> Response:
    state = current_state()
    with state.lock:
        pubsub.delete_subscription(state, _find(state, name)["name"])
    return json_response({"ok": True})


@bp.post("/subscriptions/<path:name>")
def knobs(name: str) -> Response:
    """{paused: bool, duplicate: n|true, reorder: n|true, release: true}; see docs/sandbox.md."""
    data = payload()
    unknown = sorted(set(data) - set(KNOBS))
    if unknown or not data:
        raise ControlError(400, f"give one or more of {', '.join(KNOBS)}")
    counts = {}
    for knob in ("duplicate", "reorder"):
        if knob in data:
            raw = data[knob]
            count = 1 if raw is True else 0 if raw is False else raw
            if not isinstance(count, int) or count < 0:
                raise ControlError(400, f"{knob} must be true, false or a count")
            counts[knob] = count
    if "paused" in data and not isinstance(data["paused"], bool):
        raise ControlError(400, "paused must be true or false")
    state = current_state()
    with state.lock:
        record = _find(state, name)
        record.update(counts)
        if "paused" in data:
            record["paused"] = data["paused"]
        if data.get("release"):
            for message in pubsub.pending(state, record["name"]):
                message["held"] = False
        answer = subscription_summary(state, record)
    _wake()
    return json_response(answer)
