"""Mail senders of the three modes, set up at the sandbox as a distributor sets them up at
Google, and written as rows the way the Notifications page saves them (secrets encrypted)."""

from __future__ import annotations

import json
import uuid
from typing import Any

import requests

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.gateway import GMAIL_SEND_SCOPE, MAIL_SCOPE, oauth
from bss.models import MailSender, NotificationRecipient, SenderMode, SenderStatus, utcnow
from bss.settings import Settings
from bss.tools import SandboxTenant

MODES = (SenderMode.GMAIL_API, SenderMode.SMTP_XOAUTH2, SenderMode.SERVICE_ACCOUNT)


def post(sandbox: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    resp = requests.post(sandbox + path, json=body, timeout=30)
    assert resp.status_code < 300, resp.text
    return dict(resp.json())


def mailbox(sandbox: str, tenant: SandboxTenant, local: str = "") -> str:
    """A new account on the tenant's reseller domain (a mailbox that sends notifications)."""
    address = f"{local or 'notify-' + uuid.uuid4().hex[:6]}@{tenant.reseller}"
    post(sandbox, f"/_sandbox/resellers/{tenant.reseller}/users", {"email": address})
    return address


def mail_to(sandbox: str, address: str) -> list[dict[str, Any]]:
    """What Google sent to `address`, oldest first (Gmail API and SMTP alike)."""
    resp = requests.get(f"{sandbox}/_sandbox/mail", params={"to": address}, timeout=10)
    resp.raise_for_status()
    return list(resp.json()["messages"])


def add_sender(
    settings: Settings,
    *,
    distributor_id: int | None,
    mode: str,
    from_address: str,
    instance_id: int | None = None,
    refresh_token: str | None = None,
    key: dict[str, Any] | None = None,
    scopes: list[str] | None = None,
    is_default: bool = True,
    name: str = "",
) -> int:
    """A working sender row (status OK), its secrets encrypted with the vault."""
    vault = vault_from_settings(settings)
    with session_scope(settings.database_url) as s:
        sender = MailSender(
            distributor_id=distributor_id,
            name=name or f"{mode.replace('_', '-')}-{uuid.uuid4().hex[:6]}",
            mode=mode,
            from_address=from_address,
            instance_id=instance_id,
            refresh_token_enc=vault.encrypt(refresh_token) if refresh_token else None,
            service_account_key_enc=vault.encrypt(json.dumps(key)) if key else None,
            granted_scopes=" ".join(scopes or []),
            is_default=is_default,
            status=SenderStatus.OK,
            authenticated_at=utcnow(),
        )
        s.add(sender)
        s.flush()
        assert sender.id is not None
        return sender.id


def smtp_grant(sandbox: str, tenant: SandboxTenant, address: str, scopes: list[str]) -> str:
    """The mailbox's consent to the instance's OAuth client (offline): its refresh token."""
    grant = post(
        sandbox,
        "/_sandbox/tokens",
        {"client_id": tenant.client_id, "user": address, "scopes": scopes},
    )
    return str(grant["refresh_token"])


def sender_of_mode(
    settings: Settings,
    sandbox: str,
    tenant: SandboxTenant,
    mode: str,
    *,
    platform: bool = False,
    is_default: bool = True,
) -> tuple[int, str]:
    """A sender of `mode` for the tenant (or, `platform`, the platform's own, through the
    tenant's Google accounts); (its id, its address). gmail_api sends as the tenant's instance
    admin; smtp_xoauth2 as a mailbox that consented to https://mail.google.com/;
    service_account as a user its key impersonates, delegated https://mail.google.com/ in the
    Admin console."""
    owner = None if platform else tenant.distributor_id
    if mode == SenderMode.GMAIL_API:
        sender = add_sender(
            settings,
            distributor_id=owner,
            mode=mode,
            from_address=tenant.admin,
            instance_id=tenant.instance_id,
            scopes=[GMAIL_SEND_SCOPE],
            is_default=is_default,
        )
        return sender, tenant.admin
    address = mailbox(sandbox, tenant)
    if mode == SenderMode.SMTP_XOAUTH2:
        scopes = [MAIL_SCOPE, *oauth.OPENID_SCOPES]
        sender = add_sender(
            settings,
            distributor_id=owner,
            mode=mode,
            from_address=address,
            instance_id=tenant.instance_id,
            refresh_token=smtp_grant(sandbox, tenant, address, scopes),
            scopes=scopes,
            is_default=is_default,
        )
        return sender, address
    project = post(sandbox, "/_sandbox/projects", {"reseller": tenant.reseller})["project_id"]
    key = post(sandbox, "/_sandbox/service-accounts", {"project": project, "name": "notify"})
    post(
        sandbox,
        "/_sandbox/delegations",
        {"reseller": tenant.reseller, "client_id": key["client_id"], "scopes": [MAIL_SCOPE]},
    )
    sender = add_sender(
        settings,
        distributor_id=owner,
        mode=mode,
        from_address=address,
        key=key,
        scopes=[MAIL_SCOPE],
        is_default=is_default,
    )
    return sender, address


def add_recipient(
    settings: Settings,
    *,
    distributor_id: int | None,
    topics: list[str],
    address: str | None = None,
    all_admins: bool = False,
) -> None:
    with session_scope(settings.database_url) as s:
        s.add(
            NotificationRecipient(
                distributor_id=distributor_id,
                address=address,
                all_admins=all_admins,
                topics=topics,
            )
        )
