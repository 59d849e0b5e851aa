"""Pub/Sub push delivery: a pool of threads POSTs each message to its subscription's endpoint.

Wire shape (Pub/Sub's wrapped push): ``{"message": {"data", "messageId", "message_id",
"publishTime", "publish_time", "attributes"}, "subscription"}``, with ``Authorization: Bearer
<OIDC token>`` when the push config has ``oidcToken``. 102, 200, 201, 202 and 204 acknowledge;
anything else (or no answer) is retried with exponential backoff, ``retryPolicy`` when the
subscription has one, else between PUSH_MIN_BACKOFF and PUSH_MAX_BACKOFF seconds.

One dispatcher thread hands due messages, oldest first, to ``threads`` push threads (PUSH_THREADS
by default), never more than there are threads free, so several pushes are outstanding at once as
with Pub/Sub; a message is pushed by one thread at a time. No thread holds the state lock while
POSTing. Test knobs per subscription (``paused``, ``duplicate``, ``reorder``) are set by POST
/_sandbox/pubsub/subscriptions/<name>.
"""

from __future__ import annotations

import json
import logging
import queue
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
#: Pushes outstanding at once (all subscriptions together); Pub/Sub has many per subscription.
PUSH_THREADS = 8
#: How often the dispatcher looks for due messages when nothing wakes it.
TICK = 0.05
#: How long stop() waits for pushes under way to end.
STOP_TIMEOUT = 5.0


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
    with state.lock:
        key = dict(tokens.signing_key(state))
        account = next(
            (dict(c) for c in state.clients.values() if c.get("client_email") == email),
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
    return crypto.sign(claims, key["pem"], key["kid"])  # outside the lock: RSA takes a while


def push_body(message: dict, subscription: str) -> dict:
    """Pub/Sub's wrapped push body (it sends both spellings of messageId and publishTime)."""
    inner = dict(message)
    inner["message_id"] = message["messageId"]
    inner["publish_time"] = message["publishTime"]
    if not inner.get("attributes"):
        inner.pop("attributes", None)
    return {"message": inner, "subscription": subscription}


class Pusher:
    """An app's push delivery, a dispatcher and its push threads: start() once, stop() on
    shutdown."""

    def __init__(
        self,
        state: State,
        *,
        issuer: str,
        threads: int = PUSH_THREADS,
        min_backoff: float = PUSH_MIN_BACKOFF,
        max_backoff: float = PUSH_MAX_BACKOFF,
    ) -> None:
        if threads < 1:
            raise ValueError("push delivery needs at least one thread")
        self.state = state
        self.issuer = issuer
        self.min_backoff = min_backoff
        self.max_backoff = max_backoff
        self.wake = threading.Event()
        self.stopping = threading.Event()
        #: Keys ("subscription|messageId") of the messages a push thread has; under state.lock.
        self.in_flight: set[str] = set()
        self.pushes: queue.SimpleQueue[tuple[dict, dict, str] | None] = queue.SimpleQueue()
        self.dispatcher = threading.Thread(target=self._dispatch, name="pubsub-push", daemon=True)
        self.workers = [
            threading.Thread(target=self._work, name=f"pubsub-push-{n}", daemon=True)
            for n in range(threads)
        ]

    def start(self) -> None:
        for worker in self.workers:
            worker.start()
        self.dispatcher.start()

    def stop(self, timeout: float = STOP_TIMEOUT) -> None:
        """Start no more pushes; wait up to ``timeout`` for those under way to end."""
        self.stopping.set()
        self.wake.set()
        deadline = time.monotonic() + timeout
        me = threading.current_thread()
        if self.dispatcher.is_alive() and self.dispatcher is not me:
            self.dispatcher.join(timeout)
        for _ in self.workers:
            self.pushes.put(None)  # after the dispatcher's last: each thread ends on one
        for worker in self.workers:
            if worker.is_alive() and worker is not me:
                worker.join(max(0.0, deadline - time.monotonic()))

    def _dispatch(self) -> None:
        while not self.stopping.is_set():
            self.wake.clear()  # before looking, so that a wake while looking is not lost
            try:
                for push in self._due():
                    self.pushes.put(push)
            except Exception:  # the dispatcher must outlive one bad record
                log.exception("choosing pushes failed")
            self.wake.wait(TICK)

    def _due(self) -> list[tuple[dict, dict, str]]:
        """(subscription, message, key) of the oldest messages due now, one per free push
        thread, each marked in flight."""
        state, now = self.state, time.time()
        out: list[tuple[dict, dict, str]] = []
        with state.lock:
            free = len(self.workers) - len(self.in_flight)
            if free <= 0:
                return out
            from bss.sandbox.pubsub import expire

            expire(state)
            for key, message in sorted(state.pubsub_messages.items(), key=lambda m: m[1]["seq"]):
                if len(out) == free:
                    break
                sub = state.pubsub_subscriptions.get(message["subscription"])
                if sub is None or key in self.in_flight:
                    continue
                endpoint = sub["pushConfig"].get("pushEndpoint")
                if not endpoint or sub["paused"] or message["held"]:
                    continue
                if message["next_push"] > now:
                    continue
                # A restart during the push retries it after the ack deadline (the state file).
                message["next_push"] = now + sub["ackDeadlineSeconds"]
                message["attempts"] += 1
                self.in_flight.add(key)
                out.append((dict(sub), dict(message), key))
        return out

    def _work(self) -> None:
        while (push := self.pushes.get()) is not None:
            sub, message, key = push
            if self.stopping.is_set():
                self._release(key)
                continue
            acked = False
            try:
                endpoint = sub["pushConfig"]["pushEndpoint"]
                token = self._token(sub, endpoint)
                acked = self._post(endpoint, sub["name"], message, token) in ACK_STATUSES
            except Exception:  # the thread must outlive one bad delivery
                log.exception("push delivery failed")
            try:
                self._settle(sub, key, acked)
            except Exception:
                log.exception("could not settle a push")

    def _token(self, sub: dict, endpoint: str) -> str | None:
        oidc = sub["pushConfig"].get("oidcToken")
        if not oidc:
            return None
        return oidc_token(
            self.state,
            issuer=self.issuer,
            email=oidc["serviceAccountEmail"],
            audience=oidc.get("audience") or endpoint,
        )

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

    def _release(self, key: str) -> None:
        """A push not made (stopping): the message is due again, its attempt not counted."""
        with self.state.lock:
            self.in_flight.discard(key)
            stored = self.state.pubsub_messages.get(key)
            if stored is not None:
                stored["attempts"] = max(0, stored["attempts"] - 1)
                stored["next_push"] = 0.0

    def _settle(self, sub: dict, key: str, acked: bool) -> None:
        state = self.state
        with state.lock:
            self.in_flight.discard(key)
            stored = state.pubsub_messages.get(key)
            live = state.pubsub_subscriptions.get(sub["name"])
            if stored is not None and live is not None:
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
        self.wake.set()  # a push thread is free, and an acknowledgement may release a message
