"""Who receives the mail about a distributor's condition: its own recipients subscribed to the
topic (an address, or every admin of the distributor), and the platform's (every operator for
"all admins"). Each audience gets one mail through its own sender; nobody gets two."""

from __future__ import annotations

from dataclasses import dataclass

from sqlmodel import Session, col, select

from bss.models import NotificationRecipient, User, UserRole


@dataclass(frozen=True)
class Audience:
    """One mail's recipients: the distributor's (`distributor_id`), or the platform's (None)."""

    distributor_id: int | None
    addresses: list[str]


def _owner(distributor_id: int | None):  # noqa: ANN202 - a select of recipients
    column = col(NotificationRecipient.distributor_id)
    where = column.is_(None) if distributor_id is None else column == distributor_id
    return select(NotificationRecipient).where(where)


def _admins(session: Session, distributor_id: int | None) -> list[str]:
    """Every enabled admin of the distributor; of the platform (None): every operator."""
    query = select(User.email).where(col(User.disabled_at).is_(None))
    if distributor_id is None:
        query = query.where(User.role == UserRole.OPERATOR)
    else:
        query = query.where(
            User.role == UserRole.DISTRIBUTOR_ADMIN, User.distributor_id == distributor_id
        )
    return list(session.exec(query.order_by(col(User.email))).all())


def subscribed(session: Session, *, topic: str, distributor_id: int | None) -> list[str]:
    """The addresses of one owner's recipients of `topic`, each once, in a stable order."""
    found: dict[str, str] = {}
    for recipient in session.exec(_owner(distributor_id)).all():
        if topic not in (recipient.topics or []):
            continue
        addresses = (
            _admins(session, distributor_id) if recipient.all_admins else [recipient.address or ""]
        )
        for address in addresses:
            if address:
                found.setdefault(address.lower(), address)
    return sorted(found.values(), key=str.lower)


def audiences(session: Session, *, topic: str, distributor_id: int | None) -> list[Audience]:
    """The mails to send about a condition of `distributor_id` (None: of the platform itself):
    the distributor's recipients, then the platform's less anyone the first already has."""
    result = []
    told: set[str] = set()
    if distributor_id is not None:
        own = subscribed(session, topic=topic, distributor_id=distributor_id)
        if own:
            result.append(Audience(distributor_id, own))
            told = {a.lower() for a in own}
    platform = [
        a for a in subscribed(session, topic=topic, distributor_id=None) if a.lower() not in told
    ]
    if platform:
        result.append(Audience(None, platform))
    return result
