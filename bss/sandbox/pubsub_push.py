"""Pub/Sub push delivery: a background thread POSTs each message to its subscription's endpoint.

Wire shape (Pub/Sub's wrapped push): ``{"message": {"data", "messageId", "message_id",
"publishTime", "publish_time", "attributes"}, "subscription"}``, with ``Authorization: Bearer
<OIDC token>`` when the push config has ``oidcToken``. 102, 200, 201, 202 and 204 acknowledge;
anything else (or no answer) is retried with exponential backoff, ``retryPolicy`` when the
subscription has one, else between PUSH_MIN_BACKOFF and PUSH_MAX_BACKOFF seconds.

The thread never holds the state lock while POSTing. Test knobs per subscription (``paused``,
``duplicate``, ``reorder``) are set by POST /_sandbox/pubsub/subscriptions/<name>.
"""

from __future__ import annotations

import json
import logging
import threading
import time
import urllib.error
import urllib.request

from bss.sandbox import crypto, tokens
from bss.sandbox.state import State

log = logging.getLogger("bss.sandbox.pubsub")

#: Pub/Sub's push backoff without a retry policy starts small and doubles up to a minute.
PUSH_MIN_BACKOFF = 0.1
PUSH_MAX_BACKOFF = 60.0
#: Status codes Pub/Sub takes as an acknowledgement of a push.
ACK_STATUSES = frozenset({102, 200, 201, 202, 204})
#: How often the thread looks for due messages when nothing wakes it.
TICK = 0.05


def _seconds(duration: object, default: float) -> float:
    """A protobuf Duration string ("10s", "0.5s") in seconds."""
    try:
        return float(str(duration).rstrip("s"))
    except ValueError:
        return default


def backoff(subscription: dict, attempts: int, *, minimum: float, maximum: float) -> float:
    policy = subscription.get("retryPolicy") or {}
    low = _seconds(policy.get("minimumBackoff"), minimum) if policy else minimum
    high = _seconds(policy.get("maximumBackoff"), maximum) if policy else maximum
    return float(min(high, low * 2 ** max(attempts - 1, 0)))


def oidc_token(state: State, *, issuer: str, email: str, audience: str) -> str:
    """The id token Pub/Sub signs for a push: the service account's identity, our key."""
    key = tokens.signing_key(state)
    account = next(
        (c for c in state.clients.values() if c.get("client_email") == email),
        None,
    )
    now = int(time.time())
    claims = {
        "iss": issuer,
        "aud": audience,
        "azp": account["client_id"] if account else email,
        "sub": account["client_id"] if account else email,
        "email": email,
        "email_verified": True,
        "iat": now,
        "exp": now + 3600,
    }
    return crypto.sign(claims, key["pem"], key["kid"])


def push_body(message: dict, subscription: str) -> dict:
    """Pub/Sub's wrapped push body (it sends both spellings of messageId and publishTime)."""
    inner = dict(message)
    inner["message_id"] = message["messageId"]
    inner["publish_time"] = message["publishTime"]
    if not inner.get("attributes"):
        inner.pop("attributes", None)
    return {"message": inner, "subscription": subscription}


class Pusher:
    """The delivery thread of one app; start() once, stop() on shutdown."""

    def __init__(
        self,
        state: State,
        *,
        issuer: str,
        min_backoff: float = PUSH_MIN_BACKOFF,
        max_backoff: float = PUSH_MAX_BACKOFF,
    ) -> None:
        self.state = state
        self.issuer = issuer
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.wake = threading.Event()
        self.stopping = threading.Event()
        self.thread = threading.Thread(target=self._run, name="pubsub-push", daemon=True)

    def start(self) -> None:
        self.thread.start()

    def stop(self) -> None:
        self.stopping.set()
        self.wake.set()
        if self.thread.is_alive() and threading.current_thread() is not self.thread:
            self.thread.join(timeout=5)

    def _run(self) -> None:
        while not self.stopping.is_set():
            try:
                self.deliver_due()
            except Exception:  # the thread must outlive one bad delivery
                log.exception("push delivery failed")
            self.wake.wait(TICK)
            self.wake.clear()

    def _due(self) -> list[tuple[dict, dict, str | None]]:
        """(subscription, message, token) for each message to push now, marked in flight."""
        state, now = self.state, time.time()
        out = []
        with state.lock:
            from bss.sandbox.pubsub import expire

            expire(state)
            for message in sorted(state.pubsub_messages.values(), key=lambda m: m["seq"]):
                sub = state.pubsub_subscriptions.get(message["subscription"])
                if sub is None:
                    continue
                endpoint = sub["pushConfig"].get("pushEndpoint")
                if not endpoint or sub["paused"] or message["held"]:
                    continue
                if message["next_push"] > now:
                    continue
                # In flight: not picked again until this attempt's outcome is known.
                message["next_push"] = now + sub["ackDeadlineSeconds"]
                message["attempts"] += 1
                oidc = sub["pushConfig"].get("oidcToken")
                token = None
                if oidc:
                    token = oidc_token(
                        state,
                        issuer=self.issuer,
                        email=oidc["serviceAccountEmail"],
                        audience=oidc.get("audience") or endpoint,
                    )
                out.append((dict(sub), dict(message), token))
        return out

    def deliver_due(self) -> None:
        for sub, message, token in self._due():
            status = self._post(sub["pushConfig"]["pushEndpoint"], sub["name"], message, token)
            self._settle(sub, message, status in ACK_STATUSES)

    def _post(self, endpoint: str, name: str, message: dict, token: str | None) -> int | None:
        data = json.dumps(push_body(message["message"], name)).encode()
        headers = {"Content-Type": "application/json", "User-Agent": "APIs-Google"}
        if token:
            headers["Authorization"] = "Bearer " + token
        if not endpoint.startswith(("http://", "https://")):
            return None
        req = urllib.request.Request(endpoint, data=data, headers=headers, method="POST")  # noqa: S310
        try:
            with urllib.request.urlopen(req, timeout=10) as answer:  # noqa: S310 - http(s) only
                return answer.status
        except urllib.error.HTTPError as error:
            return error.code
        except (OSError, ValueError):
            return None

    def _settle(self, sub: dict, message: dict, acked: bool) -> None:
        state = self.state
        key = f"{sub['name']}|{message['message']['messageId']}"
        with state.lock:
            stored = state.pubsub_messages.get(key)
            live = state.pubsub_subscriptions.get(sub["name"])
            if stored is None or live is None:
                return
            if acked and live["duplicate"] > 0:
                live["duplicate"] -= 1  # acknowledged, yet Pub/Sub delivers it once more
                stored["next_push"] = 0.0
            elif acked:
                del state.pubsub_messages[key]
                for other in state.pubsub_messages.values():
                    if other["subscription"] == sub["name"] and other["held"]:
                        other["held"] = False  # a held-back message goes after a later one
            else:
                stored["next_push"] = time.time() + backoff(
                    live,
                    stored["attempts"],
                    minimum=self.min_backoff,
                    maximum=self.max_backoff,
                )
            try:
                state.commit()
            except OSError:
                log.exception("could not save the sandbox state")
        if acked:
            self.wake.set()
