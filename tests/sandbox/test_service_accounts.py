"""Service-account keys and domain-wide delegation through google-auth's JWT bearer grant."""

from __future__ import annotations

import google.auth.transport.requests
import pytest
from google.auth.exceptions import RefreshError
from google.oauth2 import service_account
from googleapiclient.errors import HttpError

from .helpers import GMAIL_SEND, ORDER, USER, error_of


@pytest.fixture
def key(world, sandbox):
    """Given a service account key from the distributor's project."""
    return sandbox.post("/_sandbox/service-accounts", {"project": world.project})


def delegate(sandbox, world, key, scopes):
    sandbox.post(
        "/_sandbox/delegations",
        {"reseller": world.reseller, "client_id": key["client_id"], "scopes": scopes},
    )


def test_key_is_in_googles_json_key_format(world, key):
    assert key["type"] == "service_account"
    assert key["private_key"].startswith("-----BEGIN PRIVATE KEY-----")
    assert key["client_email"].endswith(f"@{world.project}.iam.gserviceaccount.com")
    assert key["token_uri"] == world.origin + "/token"
    assert key["universe_domain"] == "googleapis.com"
    assert {
        "private_key_id",
        "client_id",
        "auth_uri",
        "auth_provider_x509_cert_url",
        "client_x509_cert_url",
    } <= set(key)


def test_delegated_service_account_acts_as_the_admin(world, sandbox, key):
    # Given the reseller's admin delegated the Reseller scope to the service account
    delegate(sandbox, world, key, [ORDER])
    creds = service_account.Credentials.from_service_account_info(key, scopes=[ORDER]).with_subject(
        world.admin
    )

    # When the gateway calls the Reseller API with it
    reseller = world.service("reseller", "v1", credentials=creds)
    with pytest.raises(HttpError) as excinfo:
        reseller.customers().get(customerId="x.example").execute()

    # Then Google treats it as the admin, from the service account's project
    assert error_of(excinfo)[:2] == (404, "notFound")
    call = sandbox.calls("reseller.*")[-1]
    assert (call["user"], call["client_id"], call["project"]) == (
        world.admin,
        key["client_id"],
        world.project,
    )


def test_without_delegation_the_grant_is_unauthorized_client(world, sandbox, key):
    delegate(sandbox, world, key, [USER])
    creds = service_account.Credentials.from_service_account_info(
        key, scopes=[ORDER, USER]
    ).with_subject(world.admin)
    with pytest.raises(RefreshError) as excinfo:
        creds.refresh(google.auth.transport.requests.Request())
    assert "unauthorized_client" in str(excinfo.value)


def test_a_key_the_sandbox_did_not_issue_fails_the_signature_check(world, sandbox, key):
    other = sandbox.post("/_sandbox/service-accounts", {"project": world.project})
    forged = dict(key, private_key=other["private_key"])
    delegate(sandbox, world, key, [ORDER])
    creds = service_account.Credentials.from_service_account_info(
        forged, scopes=[ORDER]
    ).with_subject(world.admin)
    with pytest.raises(RefreshError) as excinfo:
        creds.refresh(google.auth.transport.requests.Request())
    assert "invalid_grant" in str(excinfo.value) and "Invalid JWT Signature" in str(excinfo.value)


def test_an_unknown_subject_is_invalid_grant(world, sandbox, key):
    delegate(sandbox, world, key, [ORDER])
    creds = service_account.Credentials.from_service_account_info(key, scopes=[ORDER]).with_subject(
        "ghost@reseller.example"
    )
    with pytest.raises(RefreshError) as excinfo:
        creds.refresh(google.auth.transport.requests.Request())
    assert "invalid_grant" in str(excinfo.value)


def test_without_a_subject_gmail_has_no_mailbox(world, key):
    creds = service_account.Credentials.from_service_account_info(key, scopes=[GMAIL_SEND])
    gmail = world.service("gmail", "v1", credentials=creds)
    with pytest.raises(HttpError) as excinfo:
        gmail.users().messages().send(userId="me", body={"raw": "VG86IGFAYi5jb20KCmhp"}).execute()
    assert error_of(excinfo)[:2] == (400, "failedPrecondition")
