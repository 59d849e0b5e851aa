"""Sign-in with a password and with Google, sign-out, CSRF and the session cookie."""

from __future__ import annotations

import re
import uuid

from sqlmodel import select

from bss.db import session_scope
from bss.models import Instance, User
from tests.support.portal import PASSWORD, Account, Portal, make_account, portal_settings
from tests.support.portal_pages import google_consent, path_and_query
from web import create_app


def test_signed_out_visitors_are_sent_to_the_sign_in_page(anonymous: Portal):
    resp = anonymous.get("/")
    assert resp.status_code == 302
    follow = anonymous.get(resp.location)
    assert follow.status_code == 302 and follow.location.startswith("/sign-in")
    for path in ("/portal/instances", "/jobs", "/portal/instances/new"):
        assert anonymous.get(path).location.startswith("/sign-in?next=")


def test_password_sign_in_and_the_wrong_password(anonymous: Portal, account: Account):
    wrong = anonymous.post("/sign-in", {"email": account.email, "password": "not-it-at-all"})
    assert wrong.status_code == 401
    assert "Wrong e-mail address or password." in wrong.text
    unknown = anonymous.post("/sign-in", {"email": "nobody@x.example", "password": PASSWORD})
    assert "Wrong e-mail address or password." in unknown.text
    ok = anonymous.post(
        "/sign-in", {"email": account.email.upper(), "password": PASSWORD, "next": "/jobs"}
    )
    assert ok.status_code == 302 and ok.location == "/jobs"
    assert account.email in anonymous.get("/portal/instances").text


def test_sign_in_never_redirects_off_site(anonymous: Portal, account: Account):
    resp = anonymous.post(
        "/sign-in",
        {"email": account.email, "password": PASSWORD, "next": "//evil.example/phish"},
    )
    assert resp.location == "/portal/instances"


def test_sign_out_ends_the_session_even_for_a_copied_cookie(app, portal: Portal):
    # Given a copy of the signed-in session cookie
    cookie = portal.client.get_cookie("bss_session")
    assert cookie is not None and cookie.http_only and cookie.same_site == "Lax"
    # When the user signs out
    resp = portal.post("/sign-out")
    assert resp.status_code == 302
    # Then the copied cookie no longer opens the portal
    thief = app.test_client()
    thief.set_cookie("bss_session", cookie.value)
    assert thief.get("/portal/instances").status_code == 302


def test_session_cookies_are_secure_under_https(
    tmp_path, database_url, secret_keys, redis_url, google
):
    settings = portal_settings(
        tmp_path, database_url, secret_keys, redis_url, google, "https://portal.example"
    )
    app = create_app(settings)
    assert app.config["SESSION_COOKIE_SECURE"] is True
    assert app.config["SESSION_COOKIE_NAME"].startswith("__Host-")
    assert app.config["SESSION_COOKIE_HTTPONLY"] is True


def test_every_form_needs_its_csrf_token(app, portal: Portal, google, account):
    instance_id = portal.create_instance("main", google.client_id, google.client_secret)
    ids = {"instance_id": instance_id, "distributor_id": account.distributor_id}
    posts = sorted(
        re.sub(r"<int:(\w+)>", lambda m: str(ids.get(m.group(1), 1)), rule.rule)
        for rule in app.url_map.iter_rules()
        if "POST" in (rule.methods or set())
        and not rule.rule.startswith("/api/")
        # Google's pushes: no cookies, each carries Google's signed OIDC token instead
        and rule.rule != "/google/events"
    )
    assert "/sign-in" in posts and f"/portal/instances/{instance_id}/authenticate" in posts
    for path in posts:
        resp = portal.client.post(path, data={"name": "renamed", "mode": "oauth"})
        assert resp.status_code == 400, path
        assert "CSRF" in resp.text, path
    with session_scope(portal.client.application.config["BSS_SETTINGS"].database_url) as s:
        assert s.get(Instance, instance_id).name == "main"
    # And the billing API (bearer keys, no cookies) and Google's push endpoint (Google's signed
    # token, no cookies) are not affected: without their credential they answer 401, not CSRF
    assert app.test_client().post("/api/v1/jobs", json={}).status_code == 401
    pushed = portal.client.post("/google/events", json={"message": {}})
    assert pushed.status_code == 401 and "CSRF" not in pushed.text


def sign_in_with_google(portal: Portal, account_email: str) -> object:
    resp = portal.post("/sign-in/google")
    assert resp.status_code == 302, resp.text
    callback = google_consent(resp.location, account=account_email)
    return portal.get(path_and_query(callback))


def test_sign_in_with_google_for_an_existing_user(app, google, database_url):
    # Given the reseller's admin is a portal user
    account = make_account(database_url, email=google.admin)
    portal = Portal(app.test_client())
    # When they sign in with Google
    resp = sign_in_with_google(portal, google.admin)
    # Then they are signed in and their Google account is linked
    assert resp.status_code == 302 and resp.location == "/portal/instances"
    assert google.admin in portal.get("/portal/instances").text
    with session_scope(database_url) as s:
        assert s.get(User, account.user_id).google_sub


def test_sign_in_with_google_refuses_an_unknown_identity(app, google, database_url):
    portal = Portal(app.test_client())
    resp = sign_in_with_google(portal, google.admin)
    assert resp.status_code == 302 and resp.location == "/sign-in"
    page = portal.get("/sign-in").text
    assert f"There is no portal account for {google.admin}" in page
    assert portal.get("/portal/instances").status_code == 302
    with session_scope(database_url) as s:
        assert s.exec(select(User).where(User.email == google.admin)).first() is None


def test_sign_in_with_google_refuses_a_replayed_answer(app, google, database_url):
    make_account(database_url, email=google.admin)
    first = Portal(app.test_client())
    resp = first.post("/sign-in/google")
    callback = google_consent(resp.location, account=google.admin)
    assert first.get(path_and_query(callback)).location == "/portal/instances"
    # When someone replays the same answer in another browser
    other = Portal(app.test_client())
    assert other.get(path_and_query(callback)).location == "/sign-in"
    assert "already used" in other.get("/sign-in").text
    assert other.get("/portal/instances").status_code == 302


def test_bss_users_create_makes_the_first_operator(app, settings_for_portal, database_url):
    import os
    import subprocess
    import sys
    import uuid

    email = f"first-{uuid.uuid4().hex[:6]}@ops.example"
    env = dict(
        os.environ,
        DATABASE_URL=database_url,
        BSS_SECRET_KEYS=settings_for_portal.secret_keys,
        BSS_HOME=str(settings_for_portal.home),
    )
    cmd = [sys.executable, "-m", "bss", "users", "create", email, "--password-stdin"]
    short = subprocess.run(
        cmd, env=env, input="short\n", capture_output=True, text=True, timeout=60
    )
    assert short.returncode != 0 and "at least 12 characters" in short.stderr
    made = subprocess.run(
        cmd, env=env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60
    )
    assert made.returncode == 0 and f"Created operator {email}" in made.stdout
    again = subprocess.run(
        cmd, env=env, input=PASSWORD + "\n", capture_output=True, text=True, timeout=60
    )
    assert again.returncode != 0 and "exists already" in again.stderr
    portal = Portal(app.test_client()).sign_in(Account(email, PASSWORD, None, None, 0))
    assert "(operator)" in portal.get("/portal/instances").text
    with session_scope(database_url) as s:
        stored = s.exec(select(User).where(User.email == email)).one().password_hash
    assert stored.startswith("$argon2id$") and PASSWORD not in stored


def test_sign_in_ignores_targets_that_browsers_read_as_another_host(anonymous, account):
    for target in ("/\\evil.example", "https://evil.example/", "//evil.example"):
        resp = anonymous.post(
            "/sign-in", {"email": account.email, "password": PASSWORD, "next": target}
        )
        assert resp.location == "/portal/instances", target


def test_repeated_failed_sign_ins_from_one_address_are_slowed_down(settings_for_portal, account):
    # Given a portal that allows 3 failed sign-ins per minute per address (own counter)
    settings = settings_for_portal.model_copy(update={"sign_in_rate_limit": "3 per minute"})
    app = create_app(settings, test_config={"RATELIMIT_KEY_PREFIX": f"test-{uuid.uuid4().hex}"})
    attacker = Portal(app.test_client())
    # When someone guesses passwords
    answers = [
        attacker.post("/sign-in", {"email": account.email, "password": f"guess-{n}"}).status_code
        for n in range(4)
    ]
    # Then the fourth try is refused before the password is even checked
    assert answers == [401, 401, 401, 429]
    blocked = attacker.post("/sign-in", {"email": account.email, "password": account.password})
    assert blocked.status_code == 429
    assert "Too many failed sign-ins" in blocked.text
    # While a user at another address signs in as usual
    other = Portal(app.test_client())
    other.client.environ_base["REMOTE_ADDR"] = "192.0.2.7"
    assert other.sign_in(account) is other


def test_a_form_field_holding_nul_is_400_naming_it(anonymous: Portal, account: Account):
    # When a sign-in form's e-mail address holds a NUL character (PostgreSQL stores no text
    # with it: the look-up would fail as a server error)
    resp = anonymous.post("/sign-in", {"email": f"{account.email}\x00", "password": PASSWORD})
    # Then the form is refused, naming the field, and nobody is signed in
    assert resp.status_code == 400, resp.text
    assert "'email'" in resp.text and "U+0000" in resp.text
    assert anonymous.get("/portal/instances").status_code == 302
