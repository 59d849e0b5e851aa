"""A push endpoint in the test process, and helpers to set up Reseller notifications."""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import Counter
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from .helpers import World

#: Generous: a push normally arrives within a tenth of a second.
WAIT = 10.0


class Server(ThreadingHTTPServer):
    # http.server's backlog of 5 drops connections of a burst of pushes (retried by TCP 1 s on)
    request_queue_size = 64


class Receiver:
    """Records each POST (and when it came); answers after ``delay`` seconds with the queued
    statuses, then 204. Notes how many POSTs it answered at once, and any message POSTed
    again while its previous POST was still being answered."""

    def __init__(self) -> None:
        self.posts: list[dict[str, Any]] = []
        self.statuses: list[int] = []
        self.delay = 0.0
        self.answering: Counter[str] = Counter()
        self.most_at_once = 0
        self.overlapping: list[str] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:  # noqa: N802 - http.server's name
                raw = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                body = json.loads(raw)
                message_id = body["message"]["messageId"]
                with receiver.lock:
                    post = {"headers": dict(self.headers), "body": body, "at": time.monotonic()}
                    receiver.posts.append(post)
                    status = receiver.statuses.pop(0) if receiver.statuses else 204
                    if receiver.answering[message_id]:
                        receiver.overlapping.append(message_id)
                    receiver.answering[message_id] += 1
                    receiver.most_at_once = max(
                        receiver.most_at_once, sum(receiver.answering.values())
                    )
                time.sleep(receiver.delay)
                with receiver.lock:
                    receiver.answering[message_id] -= 1
                self.send_response(status)
                self.send_header("Content-Length", "0")
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.server = Server(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_port}/pubsub/push"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def wait_for(self, count: int, timeout: float = WAIT) -> list[dict]:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if len(self.posts) >= count:
                    return list(self.posts)
            time.sleep(0.02)
        raise AssertionError(f"{len(self.posts)} pushes arrived, wanted {count}")

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


def receiver_fixture() -> Iterator[Receiver]:
    receiver = Receiver()
    yield receiver
    receiver.close()


def event_of(post: dict) -> dict:
    """The decoded event JSON of one push."""
    return json.loads(base64.b64decode(post["body"]["message"]["data"]))


def service_account(world: World, name: str = "notifier") -> dict:
    return world.sandbox.post(
        "/_sandbox/service-accounts", {"project": world.project, "name": name}
    )


def register(world: World, email: str) -> str:
    """resellernotify.register as the reseller's admin: the topic name."""
    reseller = world.service("reseller", "v1")
    return (
        reseller.resellernotify().register(serviceAccountEmailAddress=email).execute()["topicName"]
    )


def our_customer(world: World, domain: str, *subscriptions: dict) -> dict:
    """A customer of our reseller with subscriptions (made without publishing anything)."""
    return world.sandbox.post(
        "/_sandbox/customers",
        {
            "customerDomain": domain,
            "reseller": world.reseller,
            "admin_email": f"admin@{domain}",
            "subscriptions": list(subscriptions),
        },
    )


def events(world: World, subscription: str) -> list[dict]:
    """The events waiting on a (pull) subscription, oldest first, from the control API."""
    found = world.sandbox.call("GET", f"/_sandbox/pubsub/subscriptions/{subscription}")
    return [m["data"] for m in found["pending"]]
