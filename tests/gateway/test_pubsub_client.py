"""The platform's Pub/Sub client against the sandbox over HTTP: it subscribes to a reseller's
topic (push with an OIDC token for our URL, or pull), pulls what Google published, and an
acknowledged message does not come back; a key file that is not one is refused in words."""

from __future__ import annotations

import uuid

import pytest

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import ConfigurationError
from bss.gateway import Gateway, PubSubClient, instance_credentials
from bss.models import Instance
from tests.support.reseller_notify import (
    console,
    customer,
    events_settings,
    get,
    instance_of,
    new_reseller,
    platform_key,
)


def _topic(settings, instance_id: int, email: str) -> str:
    with session_scope(settings.database_url) as s:
        instance = s.get(Instance, instance_id)
        creds = instance_credentials(
            instance, vault=vault_from_settings(settings), settings=settings
        )
    gateway = Gateway(settings=settings, credentials=creds)
    answer = gateway.call(
        "reseller.resellernotify.register",
        lambda svc: svc.resellernotify().register(serviceAccountEmailAddress=email),
    )
    return answer["topicName"]


def test_a_pull_subscription_gets_what_google_publishes_until_acknowledged(
    settings, sandbox, tmp_path
):
    # Given the platform's service account, registered by a reseller for its notifications
    s = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    pubsub = PubSubClient.from_settings(s)
    assert pubsub is not None and pubsub.service_account_email.endswith(".iam.gserviceaccount.com")
    reseller = new_reseller(sandbox)
    topic = _topic(s, instance_of(s, reseller), pubsub.service_account_email)
    name = f"bss-test-{uuid.uuid4().hex[:6]}"
    # When the platform subscribes for pulls and a seat change is made in the Admin console
    made = pubsub.create_subscription(name, topic=topic)
    assert made["topic"] == topic and not (made.get("pushConfig") or {}).get("pushEndpoint")
    domain = f"acme-{uuid.uuid4().hex[:6]}.example"
    customer(reseller, domain, seats=5)
    console(sandbox, domain, {"seats": 8})
    # Then a pull brings the event, and once acknowledged it does not come again
    [received] = pubsub.pull(name)
    assert received["message"]["attributes"]["eventType"] == "LICENSE_CAP_CHANGED"
    pubsub.acknowledge(name, [received["ackId"]])
    assert pubsub.pull(name) == []
    assert pubsub.get_subscription(name)["name"] == pubsub.subscription_path(name)
    # And deleting it twice is no error; afterwards it is gone
    assert pubsub.delete_subscription(name) is True
    assert pubsub.delete_subscription(name) is False
    assert pubsub.get_subscription(name) is None


def test_a_push_subscription_signs_for_our_url(settings, sandbox, tmp_path):
    s = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    pubsub = PubSubClient.from_settings(s)
    assert pubsub is not None
    topic = _topic(s, instance_of(s, new_reseller(sandbox)), pubsub.service_account_email)
    name = f"bss-push-{uuid.uuid4().hex[:6]}"
    pubsub.create_subscription(name, topic=topic, push_endpoint=s.push_url, audience=s.push_url)
    held = get(sandbox, f"/_sandbox/pubsub/subscriptions/{name}")["pushConfig"]
    assert held["pushEndpoint"] == s.push_url == "http://127.0.0.1:8123/google/events"
    assert held["oidcToken"] == {
        "serviceAccountEmail": pubsub.service_account_email,
        "audience": s.push_url,
    }


def test_no_key_means_notifications_off_and_a_bad_key_is_refused_in_words(settings, tmp_path):
    assert PubSubClient.from_settings(events_settings(settings, "http://127.0.0.1:9", None)) is None
    missing = events_settings(settings, "http://127.0.0.1:9", tmp_path / "nope.json")
    with pytest.raises(ConfigurationError, match="does not exist"):
        PubSubClient.from_settings(missing)
    not_a_key = tmp_path / "client.json"
    not_a_key.write_text('{"web": {"client_id": "x"}}')
    with pytest.raises(ConfigurationError, match="not a service-account key") as refused:
        PubSubClient.from_settings(events_settings(settings, "http://127.0.0.1:9", not_a_key))
    assert str(tmp_path) not in refused.value.message  # no machine paths in what users read


def test_pulling_again_and_again_reuses_one_access_token(settings, sandbox, tmp_path):
    # Given the platform's key, and a pull subscription of a registered reseller's topic
    s = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    first = PubSubClient.from_settings(s)
    assert first is not None
    topic = _topic(s, instance_of(s, new_reseller(sandbox)), first.service_account_email)
    name = f"bss-test-{uuid.uuid4().hex[:6]}"
    first.create_subscription(name, topic=topic)
    # When the scheduler pulls ten times, each time asking for the platform's client
    for _ in range(10):
        client = PubSubClient.from_settings(s)
        assert client is not None
        client.pull(name)
    # Then Google's token endpoint saw one exchange for the service account, not one per pull
    exchanges = get(sandbox, "/_sandbox/calls?method=oauth2.token")["calls"]
    platform = [c for c in exchanges if c["user"] == first.service_account_email]
    assert len(platform) == 1, platform
