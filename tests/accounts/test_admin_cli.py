"""Onboarding from a shell: distributors, instances and users listed, shown and created."""

from __future__ import annotations

import json

from tests.support.portal import sandbox_post

CLIENT_ID = "123456789012-abcdefghij.apps.googleusercontent.com"


def test_a_distributor_is_created_listed_and_shown_with_its_slug(bss, tenant):
    made = bss("distributors", "create", "Acme Cloud Resellers")
    assert made.exit_code == 0 and "acme-cloud-resellers" in made.output
    listed = json.loads(bss("distributors", "list", "--json").output)
    row = next(r for r in listed if r["slug"] == tenant.slug)
    assert row["instances"] == 1 and row["name"] == tenant.name
    table = bss("distributors", "list").output
    assert table.splitlines()[0].split()[:3] == ["SLUG", "NAME", "INSTANCES"]
    assert tenant.slug in table and "acme-cloud-resellers" in table
    shown = json.loads(bss("distributors", "show", tenant.slug, "--json").output)
    assert shown["instance_names"] == ["main"]
    missing = bss("distributors", "show", "nobody")
    assert missing.exit_code == 1 and "nobody" in missing.output


def test_an_oauth_instance_is_created_from_the_shell_and_says_what_comes_next(bss, tenant):
    made = bss(
        "instances", "create", tenant.slug, "eu-main", "--client-id", CLIENT_ID,
        "--client-secret-stdin", "--json", input="GOCSPX-not-shown\n",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    row = json.loads(made.output)
    assert row["ref"] == f"{tenant.slug}/eu-main" and row["status"] == "not_authenticated"
    [uri] = row["redirect_uris"]
    assert uri.startswith("https://portal.example/") and uri.endswith(
        "/AuthenticateGoogleWorkspace"
    )
    assert "Authenticate Instance" in row["next"]
    assert "GOCSPX-not-shown" not in made.output
    listed = json.loads(bss("instances", "list", tenant.slug, "--json").output)
    assert [r["ref"] for r in listed] == [f"{tenant.slug}/eu-main", f"{tenant.slug}/main"]
    shown = bss("instances", "show", f"{tenant.slug}/eu-main")
    assert "redirect_uris:" in shown.output and CLIENT_ID in shown.output


def test_a_bad_instance_is_refused_with_every_problem_and_a_suggestion(bss, tenant):
    refused = bss(
        "instances", "create", tenant.slug, "Bad Name/!", "--client-id", "abc",
        "--client-secret-stdin", input="s\n",
    )  # fmt: skip
    assert refused.exit_code == 1
    assert "'bad-name'" in refused.output and "does not look like a Google OAuth client" in (
        refused.output
    )
    assert json.loads(bss("instances", "list", tenant.slug, "--json").output)[0]["ref"] == (
        f"{tenant.slug}/main"
    )
    both = bss("instances", "create", tenant.slug, "x", "--client-id", CLIENT_ID, "--key", __file__)
    assert both.exit_code == 2 and "not both" in both.output


def test_a_service_account_instance_is_created_with_its_key_and_subject(
    bss, tenant, sandbox, tmp_path
):
    reseller = "reseller-cli.example"
    sandbox_post(
        sandbox, "/_sandbox/resellers", {"domain": reseller, "admin_email": f"a@{reseller}"}
    )
    project = sandbox_post(sandbox, "/_sandbox/projects", {"reseller": reseller})["project_id"]
    key = sandbox_post(sandbox, "/_sandbox/service-accounts", {"project": project})
    key_file = tmp_path / "key.json"
    key_file.write_text(json.dumps(key))
    made = bss(
        "instances", "create", tenant.slug, "delegated", "--key", str(key_file),
        "--subject", f"a@{reseller}", "--json",
    )  # fmt: skip
    assert made.exit_code == 0, made.output
    row = json.loads(made.output)
    assert row["mode"] == "service_account" and row["authenticated_as"] == f"a@{reseller}"
    assert row["next"] == f"bss doctor {tenant.slug}/delegated"
    assert key["private_key"] not in made.output


def test_users_are_listed_with_their_role_and_distributor(bss, tenant):
    made = bss(
        "users", "create", "ops@platform.example", "--password-stdin", input="a long passphrase!\n"
    )
    assert made.exit_code == 0, made.output
    bss("users", "create", "admin@acme.example", "--role", "distributor_admin",
        "--distributor", tenant.slug, "--google-only")  # fmt: skip
    rows = {r["email"]: r for r in json.loads(bss("users", "list", "--json").output)}
    assert rows["ops@platform.example"]["role"] == "operator"
    assert rows["admin@acme.example"]["distributor"] == tenant.slug
    assert rows["admin@acme.example"]["sign_in"] == "google"
    only = json.loads(bss("users", "list", "--distributor", tenant.slug, "--json").output)
    assert [r["email"] for r in only] == ["admin@acme.example"]
