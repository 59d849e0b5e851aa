"""Who hears of what in the demo: the demo distributor's admins and the platform's operators are
told of every topic, through the demo instance's Gmail (the Gmail API as its authenticated
admin), as a distributor would set it on its Notifications page. Mail lands in the sandbox's
mailbox (its overview page, GET /_sandbox/mail)."""

from __future__ import annotations

from sqlmodel import Session

from bss.crypto import Vault
from bss.models import SenderMode
from bss.notify import TOPICS, add_recipient, create_sender, owners_recipients, owners_senders


def seed_demo_mail(
    session: Session, vault: Vault, *, distributor_id: int, instance_id: int
) -> None:
    """A sender and an "all admins" recipient for the demo distributor and for the platform,
    unless they have some already (a second `bss demo` changes nothing)."""
    for owner in (distributor_id, None):
        if not owners_senders(session, owner):
            create_sender(
                session,
                vault=vault,
                distributor_id=owner,
                name="demo-gmail",
                mode=SenderMode.GMAIL_API,
                instance_id=instance_id,
            )
        if not owners_recipients(session, owner):
            add_recipient(session, distributor_id=owner, all_admins=True, topics=TOPICS)
