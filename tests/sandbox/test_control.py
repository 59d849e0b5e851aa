"""The control API, the overview page, and --state persistence across restarts."""

from __future__ import annotations

import json

import requests

from .conftest import free_port, start_sandbox, stop_sandbox
from .helpers import ORDER, Sandbox, World, customer_body


def test_reset_wipes_everything(world, sandbox):
    sandbox.post("/_sandbox/faults", {"method": "*", "kind": "error"})
    sandbox.reset()
    state = sandbox.state()
    assert state["resellers"] == state["customers"] == state["faults"] == []
    assert sandbox.calls() == []


def test_state_shows_googles_side_without_passwords(world, reseller, sandbox):
    reseller.customers().insert(body=customer_body("acme.example")).execute()
    directory = world.service("admin", "directory_v1")
    directory.users().insert(
        body={
            "primaryEmail": "ann@acme.example",
            "password": "s3cret-pass",
            "name": {"givenName": "A", "familyName": "B"},
        }
    ).execute()
    state = sandbox.state()
    assert [r["domain"] for r in state["resellers"]] == ["reseller.example"]
    assert state["resellers"][0]["admins"] == [world.admin]
    assert state["clients"][0]["client_secret"] == world.client["client_secret"]
    (acme,) = [c for c in state["customers"] if c["customerDomain"] == "acme.example"]
    assert (acme["reseller"], acme["tos_accepted"]) == ("reseller.example", False)
    assert "s3cret-pass" not in json.dumps(state)
    assert all("password" not in u and "_password" not in u for u in state["users"])
    assert state["tokens"]["refresh_tokens"][0]["user"] == world.admin


def test_control_api_shapes(sandbox):
    reseller = sandbox.post(
        "/_sandbox/resellers", {"domain": "r.example", "admin_email": "boss@r.example"}
    )
    assert (reseller["domain"], reseller["admin_email"], reseller["admins"]) == (
        "r.example",
        "boss@r.example",
        ["boss@r.example"],
    )
    project = sandbox.post("/_sandbox/projects", {"reseller": "r.example"})
    assert set(project["enabled_apis"]) == {
        "reseller.googleapis.com",
        "admin.googleapis.com",
        "licensing.googleapis.com",
        "gmail.googleapis.com",
        "pubsub.googleapis.com",
    }
    assert (project["user_type"], project["publishing_status"]) == ("external", "production")
    client = sandbox.post(
        "/_sandbox/clients",
        {"project": project["project_id"], "name": "N", "redirect_uris": ["http://x/cb"]},
    )
    web = client["web"]
    assert (
        web["auth_uri"] == sandbox.url + "/o/oauth2/auth"
        and web["token_uri"] == sandbox.url + "/token"
    )
    assert (
        web["client_id"].endswith(".apps.googleusercontent.com")
        and web["project_id"] == project["project_id"]
    )
    tokens = sandbox.tokens(web["client_id"], "boss@r.example", [ORDER])
    assert set(tokens) == {"access_token", "refresh_token", "expires_in", "scope", "token_type"}
    assert (tokens["expires_in"], tokens["scope"], tokens["token_type"]) == (3599, ORDER, "Bearer")
    clock = sandbox.post("/_sandbox/clock", {"advance_seconds": 60})
    assert clock["now"].endswith("Z")
    assert sandbox.post(
        "/_sandbox/tokens",
        {"client_id": "nope", "user": "boss@r.example", "scopes": [ORDER]},
        expect=404,
    )


def test_overview_page_shows_customers_subscriptions_and_calls(world, reseller, sandbox):
    cust = reseller.customers().insert(body=customer_body("acme.example")).execute()
    reseller.subscriptions().insert(
        customerId=cust["customerId"],
        body={
            "skuId": "1010020027",
            "plan": {"planName": "FLEXIBLE"},
            "seats": {"maximumNumberOfSeats": 3},
        },
    ).execute()
    page = requests.get(sandbox.url + "/_sandbox/", timeout=10)
    assert page.status_code == 200
    for text in (
        "acme.example",
        "Google Workspace Business Starter",
        "PENDING_TOS_ACCEPTANCE",
        "reseller.subscriptions.insert",
    ):
        assert text in page.text


def test_state_file_survives_a_restart(tmp_path):
    # Given a sandbox started with --state
    state_file = tmp_path / "google.json"
    port = free_port()
    proc = start_sandbox(port, tmp_path / "log.txt", "--quiet", "--state", str(state_file))
    try:
        box = Sandbox(f"http://127.0.0.1:{port}")
        world = World.seed(box)
        creds = world.credentials([ORDER])
        world.service("reseller", "v1", credentials=creds).customers().insert(
            body=customer_body("kept.example")
        ).execute()
        assert state_file.exists()  # saved after each change
    finally:
        stop_sandbox(proc)

    # When it restarts on the same file
    proc = start_sandbox(port, tmp_path / "log.txt", "--quiet", "--state", str(state_file))
    try:
        # Then Google still knows the customer, and the stored refresh token still works
        reseller = world.service(
            "reseller",
            "v1",
            credentials=creds.__class__(
                token=None,
                refresh_token=creds.refresh_token,
                client_id=creds.client_id,
                client_secret=creds.client_secret,
                token_uri=creds.token_uri,
            ),
        )
        assert (
            reseller.customers().get(customerId="kept.example").execute()["customerDomain"]
            == "kept.example"
        )
    finally:
        stop_sandbox(proc)


def test_operator_can_revoke_an_apps_access_for_an_account(world, sandbox):
    minted = sandbox.tokens(world.client["client_id"], world.admin, [ORDER])
    revoked = sandbox.post(
        "/_sandbox/revoke", {"client_id": world.client["client_id"], "user": world.admin}
    )
    assert revoked["revoked"] >= 2
    answer = requests.post(
        sandbox.url + "/token",
        data={"grant_type": "refresh_token", "refresh_token": minted["refresh_token"]},
        auth=(world.client["client_id"], world.client["client_secret"]),
        timeout=10,
    )
    assert answer.json()["error"] == "invalid_grant"
