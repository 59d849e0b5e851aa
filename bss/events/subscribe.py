"""Registering an instance for Google's notifications: push, pull, or off.

Push or pull: `resellernotify.register` with the instance's credentials names the platform's
service account (Google answers the reseller's topic), then the platform subscribes to that
topic in its own Cloud project: Pub/Sub pushes to our public endpoint with an OIDC token whose
audience is that URL, or holds the messages for the scheduler to pull. Off: our subscription is
deleted, and the reseller's registration is undone unless another instance of the same reseller
(the same topic) still listens. Google's refusals are recorded on the instance in words
(`events_error`); a request that cannot work is refused before anything changes.
"""

from __future__ import annotations

import re
from typing import Any
from urllib.parse import urlsplit

from sqlmodel import Session, col, select

from bss.errors import BssError, ConfigurationError, GoogleError, ValidationFailed
from bss.gateway import PubSubClient, instance_gateway
from bss.models import Distributor, Instance, InstanceStatus, utcnow
from bss.settings import Settings

MODES = ("push", "pull", "off")
_NAME_CHARS = re.compile(r"[^a-z0-9-]+")
KEY_SETTING = "BSS_EVENTS_SERVICE_ACCOUNT_FILE"


def subscription_name(distributor_slug: str, instance_name: str) -> str:
    """Our Pub/Sub subscription's short name for an instance: bss-<distributor>-<instance>."""
    raw = f"bss-{distributor_slug}-{instance_name}".lower()
    return _NAME_CHARS.sub("-", raw)[:255]


def _refuse(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(problem, details=[{"field": field, "problem": problem}])


def _check_request(settings: Settings, instance: Instance, mode: str) -> None:
    """Refuse what cannot work, before anything changes."""
    if mode not in MODES:
        raise _refuse("mode", f"Notifications are push, pull or off, not {mode!r}.")
    if mode == "off":
        return
    if not settings.events_service_account_file:
        raise ConfigurationError(
            f"Notifications need the platform's Google service account: {KEY_SETTING} is not set.",
            hint=f"Set {KEY_SETTING} to the JSON key of the platform's service account.",
        )
    if instance.status != InstanceStatus.AUTHENTICATED:
        raise _refuse(
            "instance",
            f"Instance {instance.name!r} is {instance.status.replace('_', ' ')}: authenticate it "
            "before registering it for notifications.",
        )
    if mode == "push":
        if not settings.events_push_url and not settings.base_urls:
            raise ConfigurationError(
                "Push needs a public URL for Google to push to: set BSS_PUBLIC_BASE_URLS or "
                "BSS_EVENTS_PUSH_URL, or choose pull."
            )
        url = urlsplit(settings.push_url)
        if settings.is_production and url.scheme != "https":
            raise _refuse(
                "mode",
                f"Google pushes only to https URLs, and the push URL is {settings.push_url}: "
                "set BSS_EVENTS_PUSH_URL to an https URL, or choose pull.",
            )


def _words(exc: BssError, what: str) -> str:
    """A Google refusal as the instance's events_error: what failed, Google's reason, the fix."""
    if isinstance(exc, GoogleError):
        status = f"{exc.status} " if exc.status else ""
        said = f"{status}{exc.reason}: {exc.message}" if exc.reason else f"{status}{exc.message}"
    else:
        said = exc.message
    text = f"{what} failed ({said.strip()})."
    if exc.hint:
        text += f" {exc.hint}"
    return text[:500]


def _matches(found: dict[str, Any], topic: str, settings: Settings, mode: str) -> bool:
    push = found.get("pushConfig") or {}
    audience = (push.get("oidcToken") or {}).get("audience")
    if found.get("topic") != topic:
        return False
    if mode == "pull":
        return not push.get("pushEndpoint")
    return push.get("pushEndpoint") == settings.push_url and audience == settings.push_url


def register_events(
    session: Session, settings: Settings, instance: Instance, mode: str
) -> Instance:
    """Set `instance`'s notifications to push, pull or off (at Google, then on the instance).

    Bad requests (an unknown mode, no platform service account, an instance that is not
    authenticated, push without a public https URL) raise and change nothing. What Google
    refuses is recorded in `instance.events_error`, the rest left as it was. The caller commits.
    """
    mode = (mode or "").strip().lower()
    _check_request(settings, instance, mode)
    pubsub = PubSubClient.from_settings(settings)  # a broken key file raises here
    if mode == "off":
        return _turn_off(session, settings, instance, pubsub)
    assert pubsub is not None
    distributor = session.get(Distributor, instance.distributor_id)
    name = pubsub.subscription_path(
        subscription_name(
            distributor.slug if distributor else str(instance.distributor_id), instance.name
        )
    )
    step = "resellernotify.register"
    try:
        gateway = instance_gateway(settings, instance)
        answer = gateway.call(
            "reseller.resellernotify.register",
            lambda svc: svc.resellernotify().register(
                serviceAccountEmailAddress=pubsub.service_account_email
            ),
        )
        topic = str((answer or {}).get("topicName") or "")
        if not topic:
            raise GoogleError("Google answered no topicName.", method=step)
        step = "Subscribing to the reseller's topic in Pub/Sub"
        found = pubsub.get_subscription(name)
        if found is not None and not _matches(found, topic, settings, mode):
            # Pub/Sub cannot switch a subscription's topic; a new one starts empty, and the
            # next reconciliation finds what was published in between.
            pubsub.delete_subscription(name)
            found = None
        if found is None:
            pubsub.create_subscription(
                name,
                topic=topic,
                push_endpoint=settings.push_url if mode == "push" else None,
                audience=settings.push_url if mode == "push" else None,
            )
    except BssError as exc:
        instance.events_error = _words(exc, step)
        instance.updated_at = utcnow()
        session.add(instance)
        return instance
    instance.events_mode = mode
    instance.events_topic = topic
    instance.events_subscription = name
    instance.events_registered_at = utcnow()
    instance.events_error = None
    instance.updated_at = utcnow()
    session.add(instance)
    return instance


def _others_on_topic(session: Session, instance: Instance) -> int:
    if not instance.events_topic:
        return 0
    return len(
        session.exec(
            select(Instance.id).where(
                Instance.events_topic == instance.events_topic,
                col(Instance.events_mode).in_(["push", "pull"]),
                Instance.id != instance.id,
            )
        ).all()
    )


def _turn_off(
    session: Session, settings: Settings, instance: Instance, pubsub: PubSubClient | None
) -> Instance:
    step = "Deleting our Pub/Sub subscription"
    try:
        if instance.events_subscription and pubsub is not None:
            pubsub.delete_subscription(instance.events_subscription)
        if instance.events_topic and pubsub is not None and not _others_on_topic(session, instance):
            step = "resellernotify.unregister"
            _unregister(settings, instance, pubsub.service_account_email)
    except BssError as exc:
        instance.events_error = _words(exc, step)
        instance.updated_at = utcnow()
        session.add(instance)
        return instance
    instance.events_mode = "off"
    instance.events_subscription = None
    instance.events_registered_at = None
    instance.events_error = None
    instance.updated_at = utcnow()
    session.add(instance)
    return instance


def _unregister(settings: Settings, instance: Instance, email: str) -> None:
    if instance.status != InstanceStatus.AUTHENTICATED:
        return  # its credentials no longer work; Google stops when the reseller removes us
    gateway = instance_gateway(settings, instance)
    try:
        gateway.call(
            "reseller.resellernotify.unregister",
            lambda svc: svc.resellernotify().unregister(serviceAccountEmailAddress=email),
        )
    except GoogleError as exc:
        if exc.status == 400:  # not registered (any more): what we wanted
            return
        raise
