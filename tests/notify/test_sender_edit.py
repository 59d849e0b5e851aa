"""Edit a mail sender: its page shows the fields its mode uses, filled in with what is stored and
never a secret; a save changes what was changed (a new address means authenticating again), goes
on the audit log and says so; bad input is refused in the form's words and changes nothing; a
distributor edits only its own senders, operators the platform's."""

from __future__ import annotations

import functools
import html
import io
import json
import re
from typing import Any

import requests
from sqlmodel import select

from bss.crypto import Vault
from bss.db import session_scope
from bss.models import AuditEntry, MailSender, SenderStatus
from tests.notify.test_senders import audit_actions, consent, smtp_sender
from tests.support.notifications import (
    add_sender,
    flashes,
    forms_of,
    page_of,
    sender_named,
)
from tests.support.portal import Portal, authenticated_instance, make_account


def edit_page(portal: Portal, distributor_id: int | None, sender_id: int) -> Any:
    return portal.get(f"{forms_of(distributor_id)}/senders/{sender_id}/edit")


def save(portal: Portal, distributor_id: int | None, sender_id: int, **fields: Any) -> Any:
    """Submit the Edit form as a browser would (every field it shows, the key file empty unless
    given); the answer: a redirect to the page, or the form again with its problems."""
    key = fields.pop("key", None)
    data: dict[str, Any] = dict(fields)
    raw = b"" if key is None else json.dumps(key).encode()
    data["key_file"] = (io.BytesIO(raw), "key.json" if key is not None else "")
    return portal.post(
        f"{forms_of(distributor_id)}/senders/{sender_id}/edit",
        data,
        content_type="multipart/form-data",
    )


def form_errors(page: str) -> list[str]:
    """The problems the refused form's page lists above it."""
    found = re.search(r'id="form-errors" role="alert">((?:<div>[^<]*</div>)*)</div>', page)
    assert found, "the page lists no problem"
    return [html.unescape(p) for p in re.findall(r"<div>([^<]*)</div>", found.group(1))]


def last_audit(database_url: str, distributor_id: int | None) -> AuditEntry:
    with session_scope(database_url) as s:
        column = AuditEntry.distributor_id
        entry = s.exec(
            select(AuditEntry)
            .where(column.is_(None) if distributor_id is None else column == distributor_id)  # type: ignore[union-attr]
            .order_by(AuditEntry.id.desc())  # type: ignore[union-attr]
        ).first()
        assert entry is not None
        s.expunge(entry)
        return entry


def service_account_key(google) -> dict[str, Any]:
    return requests.post(
        f"{google.sandbox}/_sandbox/service-accounts", json={"project": google.project}, timeout=10
    ).json()


def test_a_renamed_sender_keeps_its_mailbox_and_a_new_address_asks_for_it_again(
    portal, account, google, database_url
):
    # Given an SMTP sender whose mailbox consented
    sender = smtp_sender(portal, account, google, database_url)
    consent(portal, account, sender.id, google)
    page = portal.get(page_of(account.distributor_id)).text
    assert f'id="edit-sender-{sender.id}"' in page
    # When the admin opens its Edit page
    form = edit_page(portal, account.distributor_id, sender.id)
    # Then it shows what is stored, and the mode as it is
    assert form.status_code == 200
    assert 'value="alerts"' in form.text and f'value="{google.admin}"' in form.text
    assert "SMTP with OAuth (XOAUTH2)" in form.text
    # When they rename it, keeping the address and the instance
    edit = functools.partial(
        save, portal, account.distributor_id, sender.id, instance_id=str(sender.instance_id)
    )
    resp = edit(name="ops-alerts", from_address=google.admin)
    # Then the page shows the new name, the mailbox's consent kept
    assert resp.status_code == 302 and resp.location == page_of(account.distributor_id)
    page = portal.get(resp.location).text
    assert ("ok", "Sender 'alerts' is saved. Renamed to 'ops-alerts'.") in flashes(page)
    assert "<h3>ops-alerts</h3>" in page and "<h3>alerts</h3>" not in page
    row = sender_named(database_url, account.distributor_id, "ops-alerts")
    assert row.status == SenderStatus.OK and row.refresh_token_enc
    entry = last_audit(database_url, account.distributor_id)
    assert entry.action == "mail_sender.update" and entry.target == "sender ops-alerts"
    assert entry.details["changed"] == ["name"] and entry.details["previous_name"] == "alerts"
    # When they give it another address: another mailbox, whose consent it does not have
    resp = edit(name="ops-alerts", from_address="Notifications@" + google.reseller)
    page = portal.get(resp.location).text
    assert any("Authenticate the mailbox again" in t for k, t in flashes(page) if k == "ok")
    row = sender_named(database_url, account.distributor_id, "ops-alerts")
    assert row.from_address == "notifications@" + google.reseller
    assert row.status == SenderStatus.NOT_AUTHENTICATED and row.refresh_token_enc is None
    assert f'id="authenticate-sender-{sender.id}">Authenticate mailbox<' in page
    # And saving it again as it is changes nothing, and says so
    before = audit_actions(database_url, account.distributor_id)
    resp = edit(name="ops-alerts", from_address=row.from_address)
    page = portal.get(resp.location).text
    assert any("Nothing changed" in t for _, t in flashes(page)), flashes(page)
    assert audit_actions(database_url, account.distributor_id) == before


def test_bad_input_is_refused_in_the_forms_words_and_changes_nothing(
    portal, account, google, database_url
):
    sender = smtp_sender(portal, account, google, database_url)
    mine = sender.instance_id
    add_sender(portal, account.distributor_id, name="other", mode="smtp_xoauth2", instance_id=mine)
    with session_scope(database_url) as s:
        before = s.get(MailSender, sender.id).model_dump()
    audited = audit_actions(database_url, account.distributor_id)
    # A name that is not a slug, and an address that is not one: both named, what was typed kept
    resp = save(
        portal,
        account.distributor_id,
        sender.id,
        name="Alerts Team",
        from_address="not an address",
        instance_id=str(mine),
    )
    assert resp.status_code == 422
    problems = form_errors(resp.text)
    assert any(p.startswith("Name: 'Alerts Team' is not allowed") for p in problems), problems
    assert any("(use 'alerts-team')" in p for p in problems), problems
    assert any(p.startswith("From address: 'not an address' is not an e-mail") for p in problems)
    assert 'value="Alerts Team"' in resp.text and 'value="not an address"' in resp.text
    # Another sender's name, an empty name, another distributor's instance
    taken = save(portal, account.distributor_id, sender.id, name="other", instance_id=str(mine))
    assert any("has a sender named 'other' already" in p for p in form_errors(taken.text))
    empty = save(portal, account.distributor_id, sender.id, name="", instance_id=str(mine))
    assert form_errors(empty.text) == ["Name: required."]
    theirs = Portal(portal.client.application.test_client()).sign_in(make_account(database_url))
    their_instance = theirs.create_instance("theirs", google.client_id, google.client_secret)
    resp = save(
        portal, account.distributor_id, sender.id, name="alerts", instance_id=str(their_instance)
    )
    assert form_errors(resp.text) == ["Instance: choose one of this distributor's instances."]
    # And nothing changed, nor went on the audit log
    with session_scope(database_url) as s:
        assert s.get(MailSender, sender.id).model_dump() == before
    assert audit_actions(database_url, account.distributor_id) == audited


def test_another_distributors_sender_is_a_404(app, portal, account, google, database_url):
    # Given distributor A's sender, and an admin of distributor B
    sender = smtp_sender(portal, account, google, database_url)
    other = make_account(database_url)
    theirs = Portal(app.test_client()).sign_in(other)
    for path in (
        f"{forms_of(account.distributor_id)}/senders/{sender.id}/edit",
        f"{forms_of(other.distributor_id)}/senders/{sender.id}/edit",
    ):
        # When B opens A's Edit page, or saves it, through A's page or B's own
        opened = theirs.get(path)
        saved = theirs.post(path, {"name": "taken"})
        # Then both are a 404, as for a sender that does not exist
        assert opened.status_code == 404 and saved.status_code == 404, path
        assert "alerts" not in opened.text
    assert sender_named(database_url, account.distributor_id, "alerts") is not None
    assert sender_named(database_url, account.distributor_id, "taken") is None


def test_the_key_is_never_shown_back_and_an_empty_key_keeps_it(
    portal, account, google, database_url, secret_keys
):
    # Given a service account sender with its key
    key = service_account_key(google)
    add_sender(
        portal,
        account.distributor_id,
        name="sa",
        mode="service_account",
        from_address=google.admin,
        key=key,
    )
    sender = sender_named(database_url, account.distributor_id, "sa")
    # When the admin opens its Edit page
    form = edit_page(portal, account.distributor_id, sender.id).text
    # Then the key's public identifiers are named, never the key
    assert key["private_key_id"] in form and key["client_email"] in form
    assert key["private_key"][30:60] not in form and "PRIVATE KEY" not in form
    assert 'id="sender-edit-key"' in form and "leave this empty to keep it" in form
    assert 'id="sender-edit-instance"' not in form  # a service account uses no instance
    # When they rename it and leave the key empty
    edit = functools.partial(
        save, portal, account.distributor_id, sender.id, name="sa-ops", from_address=google.admin
    )
    resp = edit()
    assert resp.status_code == 302, resp.text
    # Then the stored key is the same one
    row = sender_named(database_url, account.distributor_id, "sa-ops")
    assert json.loads(Vault([secret_keys]).decrypt(row.service_account_key_enc)) == key
    assert last_audit(database_url, account.distributor_id).details["key_replaced"] is False
    # When they upload another key
    new_key = service_account_key(google)
    resp = edit(key=new_key)
    page = portal.get(resp.location).text
    # Then it replaces the first, and the delegation is to be verified again
    stored = f"Key {new_key['private_key_id']} of {new_key['client_email']} is stored."
    assert any(stored in t and "Verify the delegation again" in t for _, t in flashes(page))
    row = sender_named(database_url, account.distributor_id, "sa-ops")
    assert json.loads(Vault([secret_keys]).decrypt(row.service_account_key_enc)) == new_key
    entry = last_audit(database_url, account.distributor_id)
    assert entry.details["changed"] == ["key"] and entry.details["key_replaced"] is True
    assert new_key["private_key"][30:60] not in json.dumps(entry.details)
    # And a file that is not a key is refused, the stored one kept
    resp = edit(key={"type": "service_account"})
    assert resp.status_code == 422
    assert any(p.startswith("Service-account JSON key:") for p in form_errors(resp.text))
    row = sender_named(database_url, account.distributor_id, "sa-ops")
    assert json.loads(Vault([secret_keys]).decrypt(row.service_account_key_enc)) == new_key


def test_a_gmail_api_sender_moves_to_another_instance_and_sends_as_its_user(
    portal, account, google, database_url
):
    main = authenticated_instance(portal, google, "main")
    add_sender(portal, account.distributor_id, name="api", mode="gmail_api", instance_id=main)
    sender = sender_named(database_url, account.distributor_id, "api")
    form = edit_page(portal, account.distributor_id, sender.id).text
    # The Gmail API sends as the instance's user: there is no address to type
    assert 'id="sender-edit-from"' not in form and f"(now {google.admin})" in form
    # An instance that is not authenticated is refused with what to do
    bare = portal.create_instance("bare", google.client_id, google.client_secret)
    resp = save(portal, account.distributor_id, sender.id, name="api", instance_id=str(bare))
    assert resp.status_code == 422
    assert any("'bare' is not authenticated" in p for p in form_errors(resp.text))
    assert sender_named(database_url, account.distributor_id, "api").instance_id == main


def test_saving_needs_the_forms_csrf_token(portal, account, google, database_url):
    sender = smtp_sender(portal, account, google, database_url)
    path = f"{forms_of(account.distributor_id)}/senders/{sender.id}/edit"
    resp = portal.client.post(path, data={"name": "renamed", "instance_id": sender.instance_id})
    assert resp.status_code == 400 and "CSRF" in resp.text
    assert sender_named(database_url, account.distributor_id, "alerts") is not None


def test_operators_edit_the_platforms_senders_on_mail(app, account, google, database_url):
    operator = Portal(app.test_client()).sign_in(make_account(database_url, role="operator"))
    admin = Portal(app.test_client()).sign_in(account)
    main = authenticated_instance(admin, google, "main")
    add_sender(operator, None, name="platform", mode="gmail_api", instance_id=main)
    sender = sender_named(database_url, None, "platform")
    # The Mail page links the platform sender's Edit page, which the operator saves
    assert (
        f'href="/dashboard/mail/platform/senders/{sender.id}/edit"'
        in operator.get(page_of(None)).text
    )
    # The Mail page's picker switches between distributors; the platform sender's own page,
    # nobody's to switch, has none
    assert 'id="distributor-picker"' in operator.get(page_of(None)).text
    edit = edit_page(operator, None, sender.id)
    assert edit.status_code == 200 and 'id="distributor-picker"' not in edit.text
    resp = save(operator, None, sender.id, name="platform-alerts", instance_id=str(main))
    assert resp.status_code == 302 and resp.location == page_of(None)
    page = operator.get(resp.location).text
    assert ("ok", "Sender 'platform' is saved. Renamed to 'platform-alerts'.") in flashes(page)
    assert last_audit(database_url, None).action == "mail_sender.update"
    # A distributor's admin can neither open nor save it
    assert edit_page(admin, None, sender.id).status_code == 404
    assert (
        admin.post(f"{forms_of(None)}/senders/{sender.id}/edit", {"name": "x"}).status_code == 404
    )
    assert edit_page(admin, account.distributor_id, sender.id).status_code == 404
    assert sender_named(database_url, None, "platform-alerts") is not None
