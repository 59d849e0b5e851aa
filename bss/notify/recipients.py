"""Who is told what: a distributor's recipients (an address, or every admin of the distributor),
or the platform's (distributor_id None: every operator for "all admins"), each subscribed to
some topics. The same address is listed once per owner; its topics say what it gets."""

from __future__ import annotations

from collections.abc import Iterable

from sqlmodel import Session, col, select

from bss.accounts import normalize_email
from bss.errors import ValidationFailed
from bss.models import NotificationRecipient, NotifyTopic

# What each topic tells, in the words of the settings page. `test` is not a subscription: a test
# message goes to the address typed beside the button. A distributor may subscribe to its own
# senders failing too: such a report is sent through another sender (the platform's).
TOPIC_LABELS = {
    NotifyTopic.INSTANCE_NEEDS_REAUTH: "An instance needs re-authentication (at once, then a "
    "daily reminder until fixed)",
    NotifyTopic.INSTANCE_TOKEN_EXPIRING: "An instance's refresh token will expire soon "
    "(a consent screen in Testing)",
    NotifyTopic.JOBS_FAILED: "Jobs failed (one digest per hour, not one mail per job)",
    NotifyTopic.DRIFT_FOUND: "Google differs from what billing ordered (drift found)",
    NotifyTopic.WEBHOOKS_FAILING: "Webhook deliveries to billing are failing",
    NotifyTopic.SENDER_FAILING: "A mail sender stopped working",
}
TOPICS = tuple(TOPIC_LABELS)


def _owner_query(distributor_id: int | None):  # noqa: ANN202 - a select of recipients
    return select(NotificationRecipient).where(
        col(NotificationRecipient.distributor_id).is_(None)
        if distributor_id is None
        else col(NotificationRecipient.distributor_id) == distributor_id
    )


def owners_recipients(session: Session, distributor_id: int | None) -> list[NotificationRecipient]:
    """A distributor's recipients (the platform's for None): "all admins" first, then by address."""
    found = list(session.exec(_owner_query(distributor_id)).all())
    return sorted(found, key=lambda r: (not r.all_admins, r.address or ""))


def add_recipient(
    session: Session,
    *,
    distributor_id: int | None,
    address: str = "",
    all_admins: bool = False,
    topics: Iterable[str],
) -> NotificationRecipient:
    """A new recipient, refused (ValidationFailed, every problem listed) unless it is an address
    or "all admins" (not both), not listed already, with at least one known topic. The caller
    commits."""
    address, wanted = address.strip(), list(dict.fromkeys(topics))
    problems = []
    everyone = "all operators" if distributor_id is None else "all distributor admins"
    if all_admins and address:
        problems.append(
            {"field": "address", "problem": f"give an address or choose {everyone}, not both."}
        )
    elif not all_admins and not address:
        problems.append({"field": "address", "problem": f"required (or choose {everyone})."})
    elif address:
        try:
            address = normalize_email(address)
        except ValidationFailed as exc:
            problems.append({"field": "address", "problem": f"{exc.details[0]['problem']}"})
    unknown = [t for t in wanted if t not in TOPICS]
    if unknown:
        problems.append({"field": "topics", "problem": f"unknown topic(s): {', '.join(unknown)}."})
    elif not wanted:
        problems.append({"field": "topics", "problem": "choose at least one topic."})
    if not problems and _listed(session, distributor_id, address, all_admins):
        who = everyone if all_admins else address
        problems.append(
            {
                "field": "address",
                "problem": f"{who} is a recipient already: remove it first to change its topics.",
            }
        )
    if problems:
        listed = " ".join(f"{p['field']}: {p['problem']}" for p in problems)
        raise ValidationFailed(f"The recipient was not added. {listed}", details=problems)
    recipient = NotificationRecipient(
        distributor_id=distributor_id,
        address=None if all_admins else address,
        all_admins=all_admins,
        topics=[t for t in TOPICS if t in wanted],
    )
    session.add(recipient)
    session.flush()
    return recipient


def _listed(session: Session, distributor_id: int | None, address: str, all_admins: bool) -> bool:
    query = _owner_query(distributor_id)
    if all_admins:
        query = query.where(col(NotificationRecipient.all_admins).is_(True))
    else:
        query = query.where(col(NotificationRecipient.address) == address)
    return session.exec(query).first() is not None


def remove_recipient(session: Session, recipient: NotificationRecipient) -> None:
    """Stop telling this recipient anything; the caller commits."""
    session.delete(recipient)


def describe_recipient(recipient: NotificationRecipient) -> str:
    """The recipient in words: its address, or who "all admins" are."""
    if recipient.all_admins:
        return "all operators" if recipient.distributor_id is None else "all distributor admins"
    return recipient.address or ""
