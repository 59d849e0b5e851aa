"""GAM7, the reseller admins' CLI, run unmodified against the sandbox.

GAM runs from its own virtual environment (see gam_harness.py); these tests skip without it and
run in CI with ``pytest -m gam tests/sandbox/test_gam.py``.
"""

from __future__ import annotations

import csv
import io
import json
import os

import pytest

from .gam_harness import GAM_SCOPES, gam_executable, gam_venv, oauth_create, seed_gam

GAM = gam_executable()
STARTER = "1010020027"  # Google Workspace Business Starter

pytestmark = pytest.mark.gam


@pytest.fixture
def gam_world(sandbox, tmp_path):
    """Given a reseller's admin who set GAM up with a Desktop client and consented.

    Skipped without GAM's virtual environment; a failure in CI when it names one.
    """
    if GAM is None:
        missing = f"GAM is not installed in {gam_venv()} (set BSS_GAM_VENV; see gam_harness.py)"
        if os.environ.get("CI") and os.environ.get("BSS_GAM_VENV"):
            pytest.fail(missing)
        pytest.skip(missing)
    return seed_gam(sandbox, tmp_path, GAM)


@pytest.fixture
def gam(gam_world):
    return gam_world[0]


@pytest.fixture
def resold(sandbox, gam_world):
    """Given a customer of ours with an active Business Starter subscription of 5 seats."""
    world = gam_world[1]
    return sandbox.post(
        "/_sandbox/customers",
        {
            "customerDomain": "acme.example",
            "reseller": world.reseller,
            "admin_email": "boss@acme.example",
            "subscriptions": [
                {"skuId": STARTER, "planName": "FLEXIBLE", "seats": {"maximumNumberOfSeats": 5}}
            ],
        },
    )


def ok(result):
    """GAM's output, after checking it exited 0."""
    assert result.returncode == 0, result.stdout
    return result.stdout


def rows(output: str, first_column: str) -> list[dict]:
    """The CSV a `gam print` command wrote, from its header line on."""
    lines = output.splitlines()
    start = next(i for i, line in enumerate(lines) if line.split(",")[0] == first_column)
    return list(csv.DictReader(io.StringIO("\n".join(lines[start:]))))


def customer_of(sandbox, domain: str) -> dict:
    return next(c for c in sandbox.state()["customers"] if c["customerDomain"] == domain)


def test_oauth_create_with_a_desktop_client_writes_oauth2_txt(sandbox, gam_world):
    # Given GAM's client_secrets.json for a fresh Desktop client, and no oauth2.txt
    gam, world = gam_world
    fresh = sandbox.post(
        "/_sandbox/clients", {"project": world.project, "name": "GAM 2", "type": "installed"}
    )
    gam.write_client_secrets(fresh)
    (gam.config_dir / "oauth2.txt").unlink()

    # When the admin runs `gam oauth create` and clicks Allow in the browser
    output = oauth_create(gam, sandbox, world.admin, GAM_SCOPES)

    # Then GAM verified Google's id_token and stored a refresh token for the admin
    assert "oauth2.txt" in output and "Created" in output, output
    stored = json.loads((gam.config_dir / "oauth2.txt").read_text())
    assert stored["client_id"] == fresh["installed"]["client_id"]
    assert stored["refresh_token"]
    assert stored["decoded_id_token"]["email"] == world.admin
    assert stored["decoded_id_token"]["iss"] == "https://accounts.google.com"
    # And GAM can call the Reseller API with them
    ok(gam.run("print", "resoldsubscriptions"))
    assert [c["client_id"] for c in sandbox.calls("reseller.*")] == [stored["client_id"]]


def test_reseller_commands(sandbox, gam):
    # When the reseller's admin creates a customer with GAM
    out = ok(
        gam.run(
            "create", "resoldcustomer", "acme.example",
            "email", "owner@elsewhere.example", "contact", "Ada Owner",
            "name", "Acme Inc", "phone", "+1 650-253-0000", "address1", "1 Main St",
            "city", "Mountain View", "state", "CA", "postalcode", "94043", "country", "US",
        )
    )  # fmt: skip
    customer = customer_of(sandbox, "acme.example")
    assert customer["customerId"] in out

    # Then `info resoldcustomer` shows it
    info = ok(gam.run("info", "resoldcustomer", "acme.example"))
    assert customer["customerId"] in info and "acme.example" in info

    # When it buys a flexible Business Starter subscription of 5 seats
    ok(
        gam.run(
            "create", "resoldsubscription", customer["customerId"],
            "sku", STARTER, "plan", "flexible", "seats", "5",
        )
    )  # fmt: skip
    # and, once the customer's admin accepted the terms, raises it to 7
    sandbox.post(f"/_sandbox/customers/{customer['customerId']}/accept-tos")
    ok(gam.run("update", "resoldsubscription", customer["customerId"], STARTER, "seats", "7"))

    # Then Google holds one subscription of 7 seats, and GAM lists it
    subs = [
        s for s in sandbox.state()["subscriptions"] if s["customerId"] == customer["customerId"]
    ]
    assert [(s["skuId"], s["seats"]["maximumNumberOfSeats"]) for s in subs] == [(STARTER, 7)]
    listed = rows(ok(gam.run("print", "resoldsubscriptions")), "customerId")
    assert [(r["customerDomain"], r["skuId"], r["seats.maximumNumberOfSeats"]) for r in listed] == [
        ("acme.example", STARTER, "7")
    ]


def test_user_commands(sandbox, gam, resold):
    # When the reseller's admin creates a user in its customer's domain, then suspends it
    ok(
        gam.run(
            "create", "user", "alice@acme.example",
            "firstname", "Alice", "lastname", "Liddell", "password", "Secret-Passw0rd",
        )
    )  # fmt: skip
    ok(gam.run("update", "user", "alice@acme.example", "suspended", "on"))

    # Then Google has the user, suspended
    users = {u["primaryEmail"]: u for u in sandbox.state()["users"]}
    assert users["alice@acme.example"]["suspended"] is True
    # And GAM shows it
    info = ok(gam.run("info", "user", "alice@acme.example"))
    assert "Alice" in info and "Liddell" in info
    # with its licenses: GAM asks for every SKU it knows and gives up on any answer but 404
    assert "Not available/incomplete" not in info
    listed = rows(
        ok(gam.run("print", "users", "domain", "acme.example", "fields", "suspended")),
        "primaryEmail",
    )
    assert ("alice@acme.example", "True") in {(r["primaryEmail"], r["suspended"]) for r in listed}
    # with only the fields asked for (GAM sends fields=; Google answers with just those)
    assert "lastLoginTime" not in listed[0]


def test_print_users_with_a_query_lists_only_the_matching_users(sandbox, gam, resold):
    # Given one suspended user beside the customer's admin
    sandbox.post(f"/_sandbox/customers/{resold['customerId']}/users", {"email": "eve@acme.example"})
    ok(gam.run("update", "user", "eve@acme.example", "suspended", "on"))

    # When the admin asks GAM for the suspended users only
    out = ok(gam.run("print", "users", "domain", "acme.example", "query", "isSuspended=true"))

    # Then Google answered with just that one (GAM prints what users.list returns)
    assert [r["primaryEmail"] for r in rows(out, "primaryEmail")] == ["eve@acme.example"]


def test_license_commands(sandbox, gam, resold):
    # Given a user in the customer's domain
    sandbox.post(f"/_sandbox/customers/{resold['customerId']}/users", {"email": "bob@acme.example"})

    # When the admin gives it a Business Starter license
    ok(gam.run("user", "bob@acme.example", "add", "license", STARTER))

    # Then Google counts it, and GAM lists it
    def licensed() -> list[str]:
        return [
            a["userId"]
            for a in sandbox.state()["licenses"]
            if a["skuId"] == STARTER and a["userId"].endswith("@acme.example")
        ]

    assert licensed() == ["bob@acme.example"]
    info = ok(gam.run("info", "user", "bob@acme.example"))
    assert "Google Workspace Business Starter" in info.split("Licenses:")[1], info
    assert "Not available/incomplete" not in info
    as_customer = ("config", "customer_id", resold["customerId"])
    listed = rows(ok(gam.run(*as_customer, "print", "licenses", "sku", STARTER)), "userId")
    assert [r["userId"] for r in listed] == ["bob@acme.example"]
    # also when GAM walks every product it knows (it ignores products Google refuses)
    listed = rows(ok(gam.run(*as_customer, "print", "licenses")), "userId")
    assert [(r["userId"], r["skuId"]) for r in listed] == [("bob@acme.example", STARTER)]

    # When it takes the license away again
    ok(gam.run("user", "bob@acme.example", "delete", "license", STARTER))

    # Then the seat is free
    assert licensed() == []
