"""Registering an instance for Google's notifications (push, pull, off) against the sandbox over
HTTP: what Google and Pub/Sub end up holding, what the instance records, and refusals in words
that change nothing."""

from __future__ import annotations

import pytest
import requests

from bss.db import session_scope
from bss.errors import ConfigurationError, ValidationFailed
from bss.events import register_events
from bss.models import Distributor, Instance
from tests.support.reseller_notify import (
    events_settings,
    get,
    instance_of,
    new_reseller,
    platform_key,
    second_instance,
)


def _register(settings, instance_id: int, mode: str) -> Instance:
    with session_scope(settings.database_url) as s:
        instance = s.get(Instance, instance_id)
        register_events(s, settings, instance, mode)
        s.flush()
        s.expunge(instance)
        return instance


def _pubsub(sandbox: str) -> dict:
    return get(sandbox, "/_sandbox/pubsub")


def _watchers(sandbox: str, topic: str) -> list[str]:
    return next(t["service_accounts"] for t in _pubsub(sandbox)["topics"] if t["topic"] == topic)


def test_push_then_pull_then_off(settings, sandbox, tmp_path):
    # Given an authenticated instance and the platform's service account
    s = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    instance_id = instance_of(s, new_reseller(sandbox))
    # When it is registered for push
    pushed = _register(s, instance_id, "push")
    # Then Google has a topic for the reseller, watched by the platform's account, and Pub/Sub
    # pushes to our endpoint with tokens for it, through a subscription named after it
    assert pushed.events_mode == "push" and pushed.events_error is None
    assert pushed.events_registered_at is not None
    with session_scope(s.database_url) as db:
        slug = db.get(Distributor, pushed.distributor_id).slug
    assert pushed.events_subscription.endswith(f"/subscriptions/bss-{slug}-main")
    [sub] = _pubsub(sandbox)["subscriptions"]
    assert sub["name"] == pushed.events_subscription and sub["topic"] == pushed.events_topic
    assert sub["pushConfig"]["pushEndpoint"] == s.push_url
    assert sub["pushConfig"]["oidcToken"]["audience"] == s.push_url
    assert len(_watchers(sandbox, pushed.events_topic)) == 1
    # When it switches to pull, the same subscription name now holds messages for pulls
    pulled = _register(s, instance_id, "pull")
    [sub] = _pubsub(sandbox)["subscriptions"]
    assert pulled.events_mode == "pull" and sub["name"] == pushed.events_subscription
    assert not sub["pushConfig"].get("pushEndpoint")
    # When it is turned off, the subscription is gone and the reseller no longer tells us
    off = _register(s, instance_id, "off")
    assert off.events_mode == "off" and off.events_subscription is None
    assert _pubsub(sandbox)["subscriptions"] == []
    assert _watchers(sandbox, pushed.events_topic) == []


def test_off_keeps_the_registration_another_instance_of_the_reseller_needs(
    settings, sandbox, tmp_path
):
    s = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    reseller = new_reseller(sandbox)
    first = instance_of(s, reseller)
    second = second_instance(s, reseller, first, "second")
    topic = _register(s, first, "push").events_topic
    assert _register(s, second, "pull").events_topic == topic
    _register(s, first, "off")
    # The second instance's subscription and the reseller's registration stay
    [sub] = _pubsub(sandbox)["subscriptions"]
    assert sub["name"].endswith("-second") and len(_watchers(sandbox, topic)) == 1


def test_what_google_refuses_is_recorded_in_words(settings, sandbox, tmp_path):
    s = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    reseller = new_reseller(sandbox)
    instance_id = instance_of(s, reseller)
    # Given the reseller's API access is off at Google
    resp = requests.patch(
        f"{sandbox}/_sandbox/resellers/{reseller.domain}", json={"api_access": False}, timeout=10
    )
    assert resp.status_code == 200, resp.text
    refused = _register(s, instance_id, "push")
    assert refused.events_mode == "off" and refused.events_subscription is None
    assert refused.events_error.startswith("resellernotify.register failed (403")
    assert _pubsub(sandbox)["subscriptions"] == []


def test_bad_requests_are_refused_and_change_nothing(settings, sandbox, tmp_path):
    with_key = events_settings(settings, sandbox, platform_key(sandbox, tmp_path))
    instance_id = instance_of(with_key, new_reseller(sandbox))
    with pytest.raises(ValidationFailed, match="push, pull or off, not 'sometimes'"):
        _register(with_key, instance_id, "sometimes")
    without_key = events_settings(settings, sandbox, None)
    with pytest.raises(ConfigurationError, match="BSS_EVENTS_SERVICE_ACCOUNT_FILE is not set"):
        _register(without_key, instance_id, "pull")
    key = with_key.events_service_account_file
    production = events_settings(settings, sandbox, tmp_path / key, BSS_ENV="production")
    with pytest.raises(ValidationFailed, match="Google pushes only to https URLs"):
        _register(production, instance_id, "push")
    with session_scope(settings.database_url) as db:
        instance = db.get(Instance, instance_id)
        assert instance.events_mode == "off" and instance.events_error is None
    assert _pubsub(sandbox)["subscriptions"] == []
