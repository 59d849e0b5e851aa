"""Pub/Sub delivery of Reseller events: push (OIDC, retries, knobs) and pull (ack, redelivery)."""

from __future__ import annotations

import time
from itertools import pairwise

import pytest
from google.auth.transport.requests import Request
from google.oauth2 import id_token
from google.oauth2 import service_account as sa
from googleapiclient.discovery import build
from googleapiclient.errors import HttpError

from bss.sandbox import create_app, pubsub
from bss.sandbox.app import stop_pushes
from bss.sandbox.pubsub_push import Pusher
from bss.sandbox.state import State

from .helpers import error_of
from .push_receiver import event_of, our_customer, receiver_fixture, register, service_account

PUBSUB = "https://www.googleapis.com/auth/pubsub"
TOPIC = "projects/partner-watch/topics/C01"
SUBSCRIPTION = "projects/p/subscriptions/s"
receiver = pytest.fixture(receiver_fixture)


@pytest.fixture
def setup(world):
    """Given a registered reseller with one FLEXIBLE subscription: (key, topic, customer, sub)."""
    key = service_account(world)
    topic = register(world, key["client_email"])
    customer = our_customer(
        world, "acme.example", {"skuId": "1010020027", "planName": "FLEXIBLE", "seats": 5}
    )
    return key, topic, customer, customer["subscriptions"][0]


def change_seats(world, customer, sub, seats):
    world.service("reseller", "v1").subscriptions().changeSeats(
        customerId=customer["customerId"],
        subscriptionId=sub["subscriptionId"],
        body={"maximumNumberOfSeats": seats},
    ).execute()


def pubsub_service(world, key):
    creds = sa.Credentials.from_service_account_info(key, scopes=[PUBSUB])
    return build(
        "pubsub",
        "v1",
        credentials=creds,
        static_discovery=True,
        cache_discovery=False,
        client_options={"api_endpoint": world.origin + "/"},
    )


def test_push_body_and_oidc_token(world, sandbox, setup, receiver):
    key, topic, customer, sub = setup
    made = sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "push", "push_endpoint": receiver.url},
    )
    # When the reseller changes seats through the API
    change_seats(world, customer, sub, 7)
    [post] = receiver.wait_for(1)
    body = post["body"]
    # Then Pub/Sub's wrapped push body arrives, the event base64-encoded JSON
    assert body["subscription"] == made["name"]
    assert set(body["message"]) >= {"data", "messageId", "publishTime", "attributes"}
    event = event_of(post)
    assert event["eventType"] == "LICENSE_CAP_CHANGED"
    assert (event["customerId"], event["customerDomain"], event["subscriptionId"]) == (
        customer["customerId"],
        "acme.example",
        sub["subscriptionId"],
    )
    assert event["skuId"] == "1010020027" and event["eventTime"].endswith("Z")
    assert body["message"]["attributes"]["eventType"] == "LICENSE_CAP_CHANGED"
    # And the OIDC token verifies against the sandbox's certificates, for this endpoint
    scheme, token = post["headers"]["Authorization"].split(" ", 1)
    assert scheme == "Bearer"
    claims = id_token.verify_token(
        token, Request(), audience=receiver.url, certs_url=world.origin + "/oauth2/v1/certs"
    )
    assert claims["iss"] == "https://accounts.google.com"
    assert (claims["email"], claims["email_verified"]) == (key["client_email"], True)
    with pytest.raises(ValueError):
        id_token.verify_token(
            token,
            Request(),
            audience="https://elsewhere.example/",
            certs_url=world.origin + "/oauth2/v1/certs",
        )


def test_push_is_retried_until_a_2xx(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    receiver.statuses = [503, 500, 429]
    sandbox.post("/_sandbox/pubsub/subscriptions", {"topic": topic, "push_endpoint": receiver.url})
    change_seats(world, customer, sub, 6)
    posts = receiver.wait_for(4)
    assert len({p["body"]["message"]["messageId"] for p in posts}) == 1
    time.sleep(0.5)
    assert len(receiver.posts) == 4  # acknowledged by the 204: not sent again


def acknowledged(sandbox, name: str, timeout: float = 10.0) -> None:
    """Wait until the subscription holds nothing more."""
    deadline = time.monotonic() + timeout
    while sandbox.call("GET", f"/_sandbox/pubsub/subscriptions/{name}")["pending"]:
        assert time.monotonic() < deadline, f"{name} still holds messages"
        time.sleep(0.02)


def test_pushes_are_delivered_several_at_once(world, sandbox, setup, receiver):
    key, topic, customer, sub = setup
    # Given an endpoint that takes 0.3 s to answer, and 8 events waiting for it
    receiver.delay = 0.3
    sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "busy", "push_endpoint": receiver.url},
    )
    sandbox.post("/_sandbox/pubsub/subscriptions/busy", {"paused": True})
    for seats in range(6, 14):
        change_seats(world, customer, sub, seats)
    assert len(sandbox.call("GET", "/_sandbox/pubsub/subscriptions/busy")["pending"]) == 8
    # When pushing starts
    started = time.monotonic()
    sandbox.post("/_sandbox/pubsub/subscriptions/busy", {"paused": False})
    acknowledged(sandbox, "busy")
    # Then all 8 are acknowledged in well under the 2.4 s one push at a time would take
    assert time.monotonic() - started < 1.5
    assert receiver.most_at_once > 1
    assert len({p["body"]["message"]["messageId"] for p in receiver.posts}) == 8
    assert receiver.overlapping == []
    # And each push carries its OIDC token
    for post in receiver.posts:
        token = post["headers"]["Authorization"].removeprefix("Bearer ")
        claims = id_token.verify_token(
            token, Request(), audience=receiver.url, certs_url=world.origin + "/oauth2/v1/certs"
        )
        assert claims["email"] == key["client_email"]


@pytest.fixture
def pushes(receiver):
    """A sandbox state with one push subscription on the receiver, and a way to start its
    Pusher (stopped after the test)."""
    state = State()
    with state.lock:
        pubsub.create_subscription(
            state, name=SUBSCRIPTION, topic=TOPIC, push_config={"pushEndpoint": receiver.url}
        )
    started: list[Pusher] = []

    def start(**options) -> Pusher:
        pusher = Pusher(state, issuer="https://accounts.google.com", **options)
        started.append(pusher)
        pusher.start()
        return pusher

    yield state, start
    for pusher in started:
        pusher.stop()


def publish(state: State, count: int = 1) -> list[str]:
    with state.lock:
        return [pubsub.publish(state, TOPIC, {"n": n}, {}) for n in range(count)]


def test_a_failing_push_is_retried_with_growing_backoff(pushes, receiver):
    state, start = pushes
    # Given an endpoint that fails three times
    receiver.statuses = [503, 500, 429]
    [message_id] = publish(state)
    # When the message is pushed, retried from 0.2 s on
    start(threads=4, min_backoff=0.2)
    posts = receiver.wait_for(4)
    # Then each retry waited about twice as long as the one before, until the 204
    gaps = [later["at"] - earlier["at"] for earlier, later in pairwise(posts)]
    for n, gap in enumerate(gaps):
        assert gap >= 0.2 * 2**n * 0.9, gaps
    assert {p["body"]["message"]["messageId"] for p in posts} == {message_id}
    time.sleep(0.3)
    assert len(receiver.posts) == 4
    with state.lock:
        assert state.pubsub_messages == {}


def test_a_message_is_never_pushed_twice_at_once(pushes, receiver):
    state, start = pushes
    # Given a slow, failing endpoint, and an ack deadline of 0 (Pub/Sub's least is 10 s): the
    # message is due again while its push is still under way
    receiver.delay = 0.3
    receiver.statuses = [503, 503]
    with state.lock:
        state.pubsub_subscriptions[SUBSCRIPTION]["ackDeadlineSeconds"] = 0
    publish(state, 3)
    # When several push threads are free
    start(threads=8, min_backoff=0.01)
    receiver.wait_for(5)
    time.sleep(0.5)
    # Then no message was pushed again before its push had ended, and all were delivered
    assert receiver.overlapping == []
    assert receiver.most_at_once > 1
    assert len(receiver.posts) == 5
    with state.lock:
        assert state.pubsub_messages == {}


def test_stop_pushes_ends_every_push_thread(receiver):
    # Given an app pushing with 3 threads, one push under way
    app = create_app(push_threads=3)
    pusher, state = app.extensions["sandbox_pusher"], app.extensions["sandbox"]
    threads = [pusher.dispatcher, *pusher.workers]
    assert len(pusher.workers) == 3 and all(t.is_alive() for t in threads)
    receiver.delay = 0.3
    with state.lock:
        pubsub.create_subscription(
            state, name=SUBSCRIPTION, topic=TOPIC, push_config={"pushEndpoint": receiver.url}
        )
    publish(state)
    pusher.wake.set()
    receiver.wait_for(1)
    # When its pushes are stopped
    stop_pushes(app)
    # Then the push under way ended, acknowledged, and no thread is left
    assert not any(t.is_alive() for t in threads)
    with state.lock:
        assert state.pubsub_messages == {}
    # And nothing more is pushed
    publish(state)
    time.sleep(0.3)
    assert len(receiver.posts) == 1


def test_duplicate_knob_delivers_twice(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "dup", "push_endpoint": receiver.url},
    )
    sandbox.post("/_sandbox/pubsub/subscriptions/dup", {"duplicate": True})
    change_seats(world, customer, sub, 6)
    first, second = receiver.wait_for(2)
    assert first["body"]["message"]["messageId"] == second["body"]["message"]["messageId"]


def test_reorder_knob_holds_one_back(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "reo", "push_endpoint": receiver.url},
    )
    sandbox.post("/_sandbox/pubsub/subscriptions/reo", {"reorder": 1})
    change_seats(world, customer, sub, 6)
    change_seats(world, customer, sub, 7)
    posts = receiver.wait_for(2)
    times = [event_of(p)["eventTime"] for p in posts]
    assert times == sorted(times, reverse=True)  # the later event came first


def test_paused_subscription_keeps_messages_until_resumed(world, sandbox, setup, receiver):
    _, topic, customer, sub = setup
    sandbox.post(
        "/_sandbox/pubsub/subscriptions",
        {"topic": topic, "name": "pau", "push_endpoint": receiver.url},
    )
    sandbox.post("/_sandbox/pubsub/subscriptions/pau", {"paused": True})
    change_seats(world, customer, sub, 6)
    time.sleep(0.5)
    assert receiver.posts == []
    assert len(sandbox.call("GET", "/_sandbox/pubsub/subscriptions/pau")["pending"]) == 1
    sandbox.post("/_sandbox/pubsub/subscriptions/pau", {"paused": False})
    assert event_of(receiver.wait_for(1)[0])["eventType"] == "LICENSE_CAP_CHANGED"


def test_pull_acknowledge_and_redelivery_after_the_ack_deadline(world, sandbox, setup):
    key, topic, customer, sub = setup
    subscriptions = pubsub_service(world, key).projects().subscriptions()
    name = f"projects/{world.project}/subscriptions/bss-events"
    made = subscriptions.create(
        name=name, body={"topic": topic, "ackDeadlineSeconds": 10}
    ).execute()
    assert (made["topic"], made["ackDeadlineSeconds"]) == (topic, 10)
    change_seats(world, customer, sub, 6)
    first = subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute()
    [received] = first["receivedMessages"]
    # Leased: not handed out again before the deadline
    assert subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute() == {}
    # Not acknowledged: back after the ack deadline, with a new ackId
    sandbox.post("/_sandbox/clock", {"advance_seconds": 11})
    [again] = subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute()[
        "receivedMessages"
    ]
    assert again["message"]["messageId"] == received["message"]["messageId"]
    assert again["ackId"] != received["ackId"]
    subscriptions.acknowledge(subscription=name, body={"ackIds": [again["ackId"]]}).execute()
    sandbox.post("/_sandbox/clock", {"advance_seconds": 11})
    assert subscriptions.pull(subscription=name, body={"maxMessages": 10}).execute() == {}


def test_only_registered_service_accounts_may_subscribe(world, sandbox, setup):
    _, topic, _, _ = setup
    stranger = service_account(world, "stranger")
    subscriptions = pubsub_service(world, stranger).projects().subscriptions()
    with pytest.raises(HttpError) as refused:
        subscriptions.create(
            name=f"projects/{world.project}/subscriptions/xyz", body={"topic": topic}
        ).execute()
    assert error_of(refused)[0] == 403
    assert sandbox.call("GET", "/_sandbox/pubsub")["subscriptions"] == []
