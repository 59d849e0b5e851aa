"""An instance's fields are checked where it is created or edited (the portal's form and
`create_instance`, which the CLI uses too): a System Name is a slug, a Client ID is shaped like
Google's; and the New-instance form shows what to set up at Google before the Client ID exists."""

from __future__ import annotations

import html
import re
import uuid

import pytest
from sqlmodel import select

from bss.accounts import create_distributor
from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.errors import ValidationFailed
from bss.instances import (
    OAUTH_CALLBACK_PATH,
    client_id_problem,
    create_instance,
    name_problem,
    suggested_name,
)
from bss.models import Instance
from tests.conftest import CLIENT_ID
from tests.support.portal import Portal, make_account, portal_settings, set_up_google
from web import create_app


def form_errors(page: str) -> list[str]:
    """The lines of the form's error box, as the user reads them."""
    box = re.search(r'id="form-errors"[^>]*>((?:<div>.*?</div>)*)</div>', page)
    assert box, "the page shows no form errors"
    return [html.unescape(line) for line in re.findall(r"<div>(.*?)</div>", box.group(1))]


@pytest.mark.parametrize(
    ("name", "ok"),
    [
        ("main", True),
        ("acme-main", True),
        ("9lives", True),
        ("a" * 63, True),
        ("a" * 64, False),
        ("-main", False),
        ("Main", False),
        ("acme/main", False),
        ("acme main", False),
        ("acme_main", False),
        ("", False),
    ],
)
def test_a_system_name_is_a_slug(name, ok):
    assert (name_problem(name) is None) is ok


def test_a_refused_name_comes_with_a_slug_to_use_instead():
    assert suggested_name("Bad Name/!") == "bad-name"
    assert suggested_name("Ünïcode Shop") == "unicode-shop"
    assert suggested_name("!!!") == ""
    assert "use 'bad-name'" in (name_problem("Bad Name/!") or "")
    assert "(use" not in (name_problem("!!!") or "")


@pytest.mark.parametrize(
    ("client_id", "ok"),
    [
        (CLIENT_ID, True),
        ("786021546060-0hgoe4haivzwnmmcc3vz87s8gi20kddj.apps.googleusercontent.com", True),
        ("abc", False),
        ("cid", False),
        ("786021546060.apps.googleusercontent.com", False),
        ("786021546060-0hgoe4haivzwnmmcc3vz87s8gi20kddj", False),
        ("GOCSPX-abcdefghijklmnopqrstuvwxyz12", False),
        ("x-abc.apps.googleusercontent.com", False),
    ],
)
def test_a_client_id_is_shaped_like_googles(client_id, ok):
    assert (client_id_problem(client_id) is None) is ok


def test_a_pasted_client_secret_is_called_what_it_is():
    assert "this is the Client Secret" in (client_id_problem("GOCSPX-abc") or "")


def test_the_sandbox_issues_client_ids_shaped_like_googles(sandbox):
    google = set_up_google(sandbox, "http://localhost")
    assert client_id_problem(google.client_id) is None
    assert client_id_problem(google.signin_client_id) is None


def test_create_instance_refuses_every_bad_field_at_once(settings):
    # Given a distributor
    with session_scope(settings.database_url) as s:
        d = create_distributor(s, name=f"Fields {uuid.uuid4().hex[:8]}")
        # When a caller (the CLI, say) creates an instance with a bad name and a bad Client ID
        with pytest.raises(ValidationFailed) as refused:
            create_instance(
                s,
                vault=vault_from_settings(settings),
                distributor=d,
                name="Bad Name/!",
                client_id="abc",
                client_secret="GOCSPX-secret",
            )
        # Then both are refused, each with why, and nothing is written
        fields = {p["field"]: p["problem"] for p in refused.value.details}
        assert set(fields) == {"name", "client_id"}
        assert "use 'bad-name'" in fields["name"]
        assert "apps.googleusercontent.com" in fields["client_id"]
        assert "Bad Name/!" in refused.value.message
        assert s.exec(select(Instance).where(Instance.distributor_id == d.id)).all() == []


def test_create_instance_refuses_a_name_the_distributor_has(settings):
    with session_scope(settings.database_url) as s:
        d = create_distributor(s, name=f"Twice {uuid.uuid4().hex[:8]}")
        vault = vault_from_settings(settings)
        create_instance(
            s, vault=vault, distributor=d, name="main", client_id=CLIENT_ID, client_secret="x"
        )
        with pytest.raises(ValidationFailed, match="named 'main' already"):
            create_instance(
                s, vault=vault, distributor=d, name="main", client_id=CLIENT_ID, client_secret="x"
            )


def test_a_service_account_instance_needs_no_client_id(settings):
    with session_scope(settings.database_url) as s:
        d = create_distributor(s, name=f"SA {uuid.uuid4().hex[:8]}")
        inst = create_instance(
            s,
            vault=vault_from_settings(settings),
            distributor=d,
            name="delegated",
            client_id="",
            client_secret="",
            mode="service_account",
        )
        assert inst.id is not None


def test_the_form_refuses_a_bad_name_and_client_id_and_suggests_a_name(portal):
    resp = portal.post(
        "/portal/instances/new",
        {"name": "Bad Name/!", "mode": "oauth", "client_id": "abc", "client_secret": "s"},
    )
    assert resp.status_code == 422
    errors = form_errors(resp.text)
    assert len(errors) == 2
    assert errors[0].startswith("System Name: 'Bad Name/!' is not allowed")
    assert "(use 'bad-name')" in errors[0]
    assert errors[1].startswith("Client ID: 'abc' does not look like a Google OAuth client ID")
    # What was typed stays in the form, to be corrected
    assert 'value="Bad Name/!"' in html.unescape(resp.text)


def test_a_taken_name_is_reported_once(portal, google):
    # Given an instance `main`
    portal.create_instance("main", google.client_id, google.client_secret)
    # When another is created with the same name
    resp = portal.post(
        "/portal/instances/new",
        {
            "name": "main",
            "mode": "oauth",
            "client_id": google.client_id,
            "client_secret": google.client_secret,
        },
    )
    # Then the form says so in one line, not two
    assert resp.status_code == 422
    assert form_errors(resp.text) == [
        "System Name: this distributor has an instance named 'main' already; choose another name."
    ]


def test_editing_checks_the_fields_too(portal, google):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    resp = portal.post(
        f"/portal/instances/{instance_id}/edit",
        {"name": "main", "mode": "oauth", "client_id": google.client_secret},
    )
    assert resp.status_code == 422
    assert form_errors(resp.text) == [
        "Client ID: this is the Client Secret; the Client ID is the other value Google shows, "
        "ending in .apps.googleusercontent.com."
    ]


def test_the_new_instance_form_shows_the_setup_at_google_for_every_base_url(
    tmp_path, database_url, secret_keys, redis_url, sandbox
):
    # Given a portal reachable under two public base URLs
    bases = ["https://portal.example.com", "https://bss.reseller.example"]
    google = set_up_google(sandbox, bases[0])
    settings = portal_settings(
        tmp_path, database_url, secret_keys, redis_url, google, ",".join(bases)
    )
    client = Portal(create_app(settings).test_client())
    client.sign_in(make_account(database_url))
    # When a new distributor opens the New-instance form, before any Client ID exists
    page = html.unescape(client.get("/portal/instances/new").text)
    # Then it shows the redirect URI to register for each, the APIs and the scopes
    shown = re.findall(r'<code class="redirect-uri">([^<]+)</code>', page)
    assert shown == [base + OAUTH_CALLBACK_PATH for base in bases]
    assert "create an <em>OAuth client ID</em>" in page
    for service in ("reseller", "admin", "licensing", "gmail"):
        assert f"<code>{service}.googleapis.com</code>" in page
    assert "https://www.googleapis.com/auth/apps.order" in page
    assert 'id="instance-form"' in page
