"""The gateway paces its calls through the instance's pacer: every attempt waits its turn, a
batch counts each call, a rate-limit answer slows the project's key down, and a long wait gives
the thread back (QuotaWait). Against the sandbox over HTTP and a real Redis."""

from __future__ import annotations

import json
import threading
import time
import uuid

import pytest
import redis
import requests
from google.oauth2.credentials import Credentials

from bss.crypto import Vault, generate_key
from bss.errors import QuotaWait
from bss.gateway import Gateway, Pacer, QuotaLimiter, pacer_for, project_of
from bss.gateway.gateway import BATCH_SIZE
from bss.models import Instance, InstanceMode

GET = "reseller.customers.get"


def get(domain: str):
    return lambda svc: svc.customers().get(customerId=domain)


def post(sandbox: str, path: str, body: dict) -> dict:
    resp = requests.post(sandbox + path, json=body, timeout=10)
    assert resp.status_code < 300, resp.text
    return resp.json()


class Google:
    """A reseller at the sandbox with a Cloud project, an OAuth client and a token."""

    def __init__(self, sandbox: str) -> None:
        self.sandbox = sandbox
        domain = f"reseller-{uuid.uuid4().hex[:8]}.example"
        post(sandbox, "/_sandbox/resellers", {"domain": domain, "admin_email": f"admin@{domain}"})
        self.project = post(sandbox, "/_sandbox/projects", {"reseller": domain})["project_id"]
        client = post(
            sandbox,
            "/_sandbox/clients",
            {"project": self.project, "name": "P", "redirect_uris": ["http://localhost/cb"]},
        )["web"]
        self.client_id = client["client_id"]
        scopes = [
            "https://www.googleapis.com/auth/apps.order",
            "https://www.googleapis.com/auth/gmail.send",
        ]
        grant = post(
            sandbox,
            "/_sandbox/tokens",
            {"client_id": self.client_id, "user": f"admin@{domain}", "scopes": scopes},
        )
        self.credentials = Credentials(grant["access_token"])

    def quota(self, api: str, per_second: float) -> None:
        body = {"project": self.project, "api": api, "per_second": per_second}
        post(self.sandbox, "/_sandbox/quotas", body)

    def calls(self) -> list[dict]:
        """The calls made with this reseller's project (a process an earlier test started may
        still be calling the sandbox with a token of its own)."""
        calls = requests.get(f"{self.sandbox}/_sandbox/calls", timeout=10).json()["calls"]
        return [c for c in calls if c.get("project") == self.project]


class RecordingPacer:
    """Stands in for the pacer where the test is about what the gateway asks of it."""

    def __init__(self, limits: dict[str, float]) -> None:
        self.limits = limits
        self.asked: list[tuple[str, int]] = []
        self.kept: list[str] = []  # APIs of calls that could not give their thread back
        self.limited: list[tuple[str, float | None]] = []

    def limit(self, api: str) -> float | None:
        return self.limits.get(api)

    def before_call(self, api: str, n: int = 1, *, give_back: bool = True) -> None:
        self.asked.append((api, n))
        if not give_back:
            self.kept.append(api)

    def rate_limited(self, api: str, retry_after: float | None = None) -> None:
        self.limited.append((api, retry_after))


@pytest.fixture
def google(sandbox: str) -> Google:
    return Google(sandbox)


@pytest.fixture
def sandboxed(settings, sandbox):
    return settings.model_copy(
        update={
            "google_reseller_root": sandbox + "/",
            "google_gmail_root": sandbox + "/",
            "google_http_timeout": 10,
        }
    )


@pytest.fixture
def limiter(redis_url: str) -> QuotaLimiter:
    return QuotaLimiter(redis.Redis.from_url(redis_url), prefix=f"test:{uuid.uuid4().hex}")


def test_calls_from_several_threads_keep_to_the_quota(google, sandboxed, limiter):
    # Given a quota of 4 Reseller API calls per second at Google, and our pacing at 4/s
    google.quota("reseller.googleapis.com", 4)
    pacer = Pacer(limiter=limiter, project="p1", limits={"reseller": 4}, max_sleep=10)
    errors: list[Exception] = []

    def work() -> None:
        gateway = Gateway(settings=sandboxed, credentials=google.credentials, pacer=pacer)
        for n in range(6):
            try:
                assert gateway.get_or_none(GET, get(f"x{n}.example")) is None
            except Exception as exc:  # noqa: BLE001 (reported below)
                errors.append(exc)

    # When three threads make six calls each
    started = time.monotonic()
    threads = [threading.Thread(target=work) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    # Then all were answered, at about 3.8 calls/s (95 % of the quota), and at most one was
    # refused for going too fast. Paced calls leave 52 ms of margin in each of the sandbox's
    # one-second windows: on a loaded machine a call that left late can still arrive in the
    # next one's window; the gateway then slows the key down and asks again. Unpaced, most of
    # the 18 would be refused; paced too slowly (at half the quota), they would take 9 s.
    assert errors == []
    statuses = [c["status"] for c in google.calls()]
    assert statuses.count(404) == 18
    assert statuses.count(429) <= 1
    assert len(statuses) == 18 + statuses.count(429)
    elapsed = time.monotonic() - started
    # A loaded machine delays calls, never hastens them; a refusal costs its retry's wait too.
    assert 17 / 3.8 - 0.7 <= elapsed <= 17 / 3.8 + (2.5 if 429 in statuses else 1.5)


def test_a_rate_limit_answer_is_reported_and_the_retry_waits_its_turn_again(google, sandboxed):
    pacer = RecordingPacer({"reseller": 5})
    gateway = Gateway(settings=sandboxed, credentials=google.credentials, pacer=pacer)
    fault = {"method": GET, "times": 1, "status": 429, "reason": "rateLimitExceeded"}
    post(google.sandbox, "/_sandbox/faults", fault)
    assert gateway.get_or_none(GET, get("x.example")) is None
    assert pacer.asked == [("reseller", 1), ("reseller", 1)]
    assert pacer.limited == [("reseller", None)]
    # The Reseller API's 503 naming the quota is a rate limit too; a plain 503 is not
    post(google.sandbox, "/_sandbox/faults", {**fault, "status": 503})
    post(google.sandbox, "/_sandbox/faults", {**fault, "status": 503, "reason": "backendError"})
    assert gateway.get_or_none(GET, get("x.example")) is None
    assert pacer.limited == [("reseller", None)] * 2


def test_a_long_wait_gives_the_thread_back_before_any_call(google, sandboxed, limiter):
    pacer = Pacer(limiter=limiter, project="p2", limits={"reseller": 0.2}, max_sleep=2)
    gateway = Gateway(settings=sandboxed, credentials=google.credentials, pacer=pacer)
    assert gateway.get_or_none(GET, get("x.example")) is None
    with pytest.raises(QuotaWait) as waited:
        gateway.get_or_none(GET, get("x.example"))
    assert (waited.value.api, waited.value.project, waited.value.limit) == ("reseller", "p2", 0.2)
    assert 2 < waited.value.seconds <= 1 / (0.2 * 0.95)
    assert "reseller API quota of Cloud project p2" in waited.value.message
    assert len(google.calls()) == 1


def test_a_send_waits_its_turn_in_the_thread_however_long(google, sandboxed, limiter):
    # A job stopped before a send would not know whether it went out: it does not stop there
    pacer = RecordingPacer({"gmail": 1})
    gateway = Gateway(settings=sandboxed, credentials=google.credentials, pacer=pacer)
    gateway.call(
        "gmail.users.messages.send",
        lambda svc: (
            svc.users().messages().send(userId="me", body={"raw": "VG86IGFAYi5leGFtcGxlDQoNCmhp"})
        ),
    )
    assert pacer.kept == ["gmail"]
    slept: list[float] = []
    real = Pacer(
        limiter=limiter, project="p4", limits={"gmail": 0.1}, max_sleep=2, sleep=slept.append
    )
    real.before_call("gmail", give_back=False)
    real.before_call("gmail", give_back=False)  # ten seconds away: slept, not given back
    assert slept == [pytest.approx(1 / (0.1 * 0.95), abs=0.05)]
    with pytest.raises(QuotaWait):
        real.before_call("gmail")


def test_a_short_wait_is_slept_in_the_thread(google, sandboxed, limiter):
    pacer = Pacer(limiter=limiter, project="p3", limits={"reseller": 1}, max_sleep=2)
    gateway = Gateway(settings=sandboxed, credentials=google.credentials, pacer=pacer)
    started = time.monotonic()
    for _ in range(3):
        gateway.get_or_none(GET, get("x.example"))
    elapsed = time.monotonic() - started
    # Two waits of 1 / 0.95 s; a loaded machine delays the calls, never hastens them.
    assert 2 / 0.95 - 0.3 <= elapsed <= 2 / 0.95 + 1.0


def test_a_batch_is_sent_in_chunks_the_quota_allows_and_each_call_counts(google, sandboxed):
    pacer = RecordingPacer({"reseller": 50})
    gateway = Gateway(settings=sandboxed, credentials=google.credentials, pacer=pacer)
    assert gateway.calls_per_chunk("reseller") == 3
    outcomes = gateway.batch(GET, {f"c{n}": get(f"c{n}.example") for n in range(7)})
    assert sorted(o.error.status for o in outcomes.values()) == [404] * 7
    assert pacer.asked == [("reseller", 3), ("reseller", 3), ("reseller", 1)]
    # Rate-limit answers inside a batch slow the key down once per batch
    google.quota("reseller.googleapis.com", 2)
    gateway.batch(GET, {f"d{n}": get(f"d{n}.example") for n in range(3)})
    assert pacer.limited == [("reseller", None)]


def test_chunks_stay_within_the_headroom_the_pacer_leaves(settings):
    # A batch lands at once: after evenly spread calls, any second at Google may hold the batch
    # on top of them, so a batch is no larger than the 5 % of the quota left unused
    def chunk(limit: float | None) -> int:
        pacer = RecordingPacer({} if limit is None else {"licensing": limit})
        gateway = Gateway(settings=settings, credentials=None, pacer=pacer)
        return gateway.calls_per_chunk("licensing")

    assert [chunk(0.5), chunk(1), chunk(5), chunk(40), chunk(1000), chunk(5000)] == [
        1,
        1,
        1,
        3,
        51,
        BATCH_SIZE,
    ]
    assert chunk(None) == BATCH_SIZE


def test_an_instance_s_project_and_limits(settings):
    vault = Vault([generate_key()])
    oauth = Instance(
        distributor_id=1, name="a", client_id="123456789012-abc.apps.googleusercontent.com"
    )
    assert project_of(oauth, vault=vault) == "123456789012"
    key = {"type": "service_account", "project_id": "acme-provisioning", "client_id": "1098"}
    sa = Instance(
        distributor_id=1,
        name="b",
        mode=InstanceMode.SERVICE_ACCOUNT,
        client_id="1098",
        service_account_key_enc=vault.encrypt(json.dumps(key)),
    )
    assert project_of(sa, vault=vault) == "acme-provisioning"
    odd = Instance(distributor_id=1, name="c", client_id="not-a-google-client")
    assert project_of(odd, vault=vault) == project_of(odd, vault=vault)
    assert project_of(odd, vault=vault).startswith("client-")
    # The instance's quotas override the settings' defaults, API by API
    oauth.quotas = {"licensing": 10, "gmail": 0, "unknown": 3}
    pacer = pacer_for(oauth, limiter=None, settings=settings, vault=vault)
    assert pacer.limits == {"reseller": 5.0, "admin": 40.0, "licensing": 10.0, "gmail": 1.0}
    assert pacer.project == "123456789012" and pacer.max_sleep == 2.0
