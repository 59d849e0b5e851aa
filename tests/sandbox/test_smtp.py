"""Gmail's SMTP submission server: Python's smtplib against the running sandbox, over sockets."""

from __future__ import annotations

import json
import smtplib
import ssl
from email.message import EmailMessage
from urllib.parse import urlencode

import google.auth.transport.requests
import pytest
import requests
from google.oauth2 import service_account

from .conftest import free_port, start_sandbox, stop_sandbox
from .helpers import GMAIL_SEND, REDIRECT_URI, World, consent, query_of

MAIL = "https://mail.google.com/"
#: Gmail's words for a refused XOAUTH2 token or a password.
NOT_ACCEPTED = b"5.7.8 Username and Password not accepted"


def connect(sandbox_smtp: tuple[str, int, str], *, tls: bool = True) -> smtplib.SMTP:
    """A client as ours connects: STARTTLS trusting the sandbox's certificate, then EHLO."""
    host, port, ca_file = sandbox_smtp
    client = smtplib.SMTP(host, port, timeout=10)
    if tls:
        client.starttls(context=ssl.create_default_context(cafile=ca_file))
        client.ehlo()
    return client


def xoauth2(client: smtplib.SMTP, user: str, token: str, challenges: list | None = None) -> tuple:
    """AUTH XOAUTH2 built as clients do (smtplib base64-encodes); the error challenge, decoded,
    is kept in ``challenges``."""

    def answer(challenge: bytes | None = None) -> str:
        if challenge:
            if challenges is not None:
                challenges.append(json.loads(challenge))
            return ""
        return f"user={user}\x01auth=Bearer {token}\x01\x01"

    return client.auth("XOAUTH2", answer, initial_response_ok=True)


def message(sender: str, to: str = "ann@customer.example", subject: str = "Hello") -> EmailMessage:
    msg = EmailMessage()
    msg["From"], msg["To"], msg["Subject"] = sender, to, subject
    msg.set_content("Instance main needs re-authentication.")
    return msg


def mail(sandbox) -> list[dict]:
    return sandbox.call("GET", "/_sandbox/mail")["messages"]


@pytest.fixture
def token(world, sandbox) -> str:
    """Given an access token of the reseller's admin holding https://mail.google.com/."""
    return sandbox.tokens(world.client["client_id"], world.admin, [MAIL])["access_token"]


def test_a_good_token_sends_and_the_mail_is_kept(world, sandbox, sandbox_smtp, token):
    # Given a client that trusts the sandbox's certificate
    with connect(sandbox_smtp) as client:
        assert "XOAUTH2" in client.esmtp_features["auth"].split()

        # When it authenticates with the admin's token and sends
        assert xoauth2(client, world.admin, token) == (235, b"2.7.0 Accepted")
        assert client.mail(world.admin)[0] == 250
        assert client.rcpt("ann@customer.example")[0] == 250
        assert client.rcpt("audit@elsewhere.example")[0] == 250
        code, reply = client.data(message(world.admin).as_bytes())

    # Then Gmail says OK with the message's id, and keeps it as the admin's, sent by SMTP
    assert code == 250
    (sent,) = mail(sandbox)
    assert reply == f"2.0.0 OK {sent['id']} - gsmtp".encode()
    assert (sent["via"], sent["sender"], sent["from"]) == ("smtp", world.admin, world.admin)
    assert (sent["to"], sent["bcc"]) == (["ann@customer.example"], ["audit@elsewhere.example"])
    assert sent["subject"] == "Hello"
    assert sent["body"].strip() == "Instance main needs re-authentication."
    # And the overview page lists it beside Gmail API sends
    page = requests.get(f"{sandbox.url}/_sandbox/", timeout=10).text
    assert "SMTP" in page and "Hello" in page
    assert [c["status"] for c in sandbox.calls("smtp.*")] == [235, 250]


def test_a_from_that_is_not_the_account_is_rewritten(world, sandbox, sandbox_smtp, token):
    with connect(sandbox_smtp) as client:
        xoauth2(client, world.admin, token)
        client.send_message(message("Billing <billing@elsewhere.example>"))
    (sent,) = mail(sandbox)
    assert (sent["from"], sent["rewritten_from"]) == (world.admin, "billing@elsewhere.example")


def test_the_certificate_is_checked(sandbox_smtp):
    # A client trusting only the public CAs refuses the sandbox's self-signed certificate
    host, port, _ = sandbox_smtp
    with (
        smtplib.SMTP(host, port, timeout=10) as client,
        pytest.raises(ssl.SSLCertVerificationError),
    ):
        client.starttls(context=ssl.create_default_context())


def test_auth_is_offered_and_taken_only_after_starttls(world, sandbox, sandbox_smtp, token):
    with connect(sandbox_smtp, tls=False) as client:
        client.ehlo()
        assert client.has_extn("starttls") and not client.has_extn("auth")
        with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
            xoauth2(client, world.admin, token)
    assert excinfo.value.smtp_code == 530
    assert excinfo.value.smtp_error.startswith(b"5.7.0 Must issue a STARTTLS command first.")
    assert sandbox.calls("smtp.*") == []


def test_mail_before_auth_is_530_authentication_required(sandbox, sandbox_smtp):
    with connect(sandbox_smtp) as client:
        code, reply = client.mail("admin@reseller.example")
    assert code == 530
    assert reply.startswith(b"5.7.0 Authentication Required.")
    assert mail(sandbox) == []


def _no_scope(world, sandbox, token):
    return world.admin, sandbox.tokens(world.client["client_id"], world.admin, [GMAIL_SEND])[
        "access_token"
    ]


def _wrong_user(world, sandbox, token):
    return "someone@reseller.example", token


def _expired(world, sandbox, token):
    sandbox.post("/_sandbox/clock", {"advance_seconds": 3600})
    return world.admin, token


def _revoked(world, sandbox, token):
    assert sandbox.post("/_sandbox/revoke", {"token": token}) == {"revoked": 1}
    return world.admin, token


@pytest.mark.parametrize(
    ("case", "status"),
    [(_no_scope, "400"), (_wrong_user, "400"), (_expired, "401"), (_revoked, "401")],
    ids=["no-mail-scope", "wrong-user", "expired", "revoked"],
)
def test_a_bad_token_gets_the_challenge_then_535(world, sandbox, sandbox_smtp, token, case, status):
    # Given a token Gmail will not take for this user
    user, bad = case(world, sandbox, token)

    # When a client authenticates with it
    challenges: list = []
    with connect(sandbox_smtp) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
            xoauth2(client, user, bad, challenges)
        # (nothing can be sent on that connection)
        refused = client.mail(world.admin)[0]

    # Then Gmail answers with its XOAUTH2 error challenge, then 535 after the empty answer
    assert challenges == [{"status": status, "schemes": "Bearer", "scope": MAIL}]
    assert excinfo.value.smtp_code == 535
    assert excinfo.value.smtp_error.startswith(NOT_ACCEPTED)
    # And no mail goes out
    assert refused == 530
    assert mail(sandbox) == []


def test_passwords_are_not_accepted(world, sandbox_smtp):
    with connect(sandbox_smtp) as client, pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
        client.login(world.admin, "the admin's password")
    assert excinfo.value.smtp_code == 535
    assert excinfo.value.smtp_error.startswith(NOT_ACCEPTED)


def test_a_delegated_service_account_sends_as_its_subject(world, sandbox, sandbox_smtp):
    # Given a service account with https://mail.google.com/ delegated in the reseller's domain
    key = sandbox.post("/_sandbox/service-accounts", {"project": world.project})
    sandbox.post(
        "/_sandbox/delegations",
        {"reseller": world.reseller, "client_id": key["client_id"], "scopes": [MAIL]},
    )
    creds = service_account.Credentials.from_service_account_info(key, scopes=[MAIL])
    creds = creds.with_subject(world.admin)
    creds.refresh(google.auth.transport.requests.Request())

    # When it sends over SMTP as the admin
    with connect(sandbox_smtp) as client:
        assert xoauth2(client, world.admin, creds.token)[0] == 235
        client.send_message(message(world.admin))

    # Then the mail is the admin's
    (sent,) = mail(sandbox)
    assert (sent["sender"], sent["via"]) == (world.admin, "smtp")


def test_an_injected_421_at_connect_then_the_retry_works(world, sandbox, sandbox_smtp, token):
    sandbox.post("/_sandbox/faults", {"method": "smtp.connect"})
    with pytest.raises(smtplib.SMTPConnectError) as excinfo:
        connect(sandbox_smtp)
    assert excinfo.value.smtp_code == 421
    assert excinfo.value.smtp_error.startswith(b"4.7.0 Try again later, closing connection.")

    with connect(sandbox_smtp) as client:
        xoauth2(client, world.admin, token)
        client.send_message(message(world.admin))
    assert len(mail(sandbox)) == 1


def test_an_injected_454_at_auth(world, sandbox, sandbox_smtp, token):
    sandbox.post("/_sandbox/faults", {"method": "smtp.auth", "status": 454})
    with connect(sandbox_smtp) as client:
        with pytest.raises(smtplib.SMTPAuthenticationError) as excinfo:
            xoauth2(client, world.admin, token)
        # The connection stays open: the same client may try again
        assert xoauth2(client, world.admin, token)[0] == 235
    assert excinfo.value.smtp_code == 454
    assert excinfo.value.smtp_error.startswith(
        b"4.7.0 Too many login attempts, please try again later."
    )


def test_an_answer_lost_after_data_keeps_the_mail(world, sandbox, sandbox_smtp, token):
    sandbox.post("/_sandbox/faults", {"method": "smtp.data", "kind": "applied_response_lost"})
    with connect(sandbox_smtp) as client:
        xoauth2(client, world.admin, token)
        with pytest.raises(smtplib.SMTPServerDisconnected):
            client.send_message(message(world.admin))
    # The client cannot know, and a retry would send it twice
    assert len(mail(sandbox)) == 1


def _code_exchange(world) -> dict:
    """Consent with offline access, then exchange the code at /token, as a web server does."""
    query = urlencode(
        {
            "client_id": world.client["client_id"],
            "redirect_uri": REDIRECT_URI,
            "response_type": "code",
            "scope": MAIL,
            "access_type": "offline",
            "prompt": "consent",
            "state": "s",
        }
    )
    location = consent(world.origin, f"{world.origin}/o/oauth2/v2/auth?{query}")
    answer = requests.post(
        f"{world.origin}/token",
        data={
            "grant_type": "authorization_code",
            "code": query_of(location)["code"],
            "redirect_uri": REDIRECT_URI,
            "client_id": world.client["client_id"],
            "client_secret": world.client["client_secret"],
        },
        timeout=10,
    )
    assert answer.status_code == 200, answer.text
    return answer.json()


def test_a_testing_apps_code_exchange_tells_the_refresh_tokens_lifetime(sandbox):
    world = World.seed(sandbox, publishing_status="testing")
    tokens = _code_exchange(world)
    assert 7 * 24 * 3600 - 5 <= tokens["refresh_token_expires_in"] <= 7 * 24 * 3600


def test_a_production_apps_code_exchange_does_not(world):
    tokens = _code_exchange(world)
    assert tokens["refresh_token"]
    assert "refresh_token_expires_in" not in tokens


def test_smtp_port_and_certificate_options(tmp_path):
    # --smtp-port N and --smtp-cert FILE: the file holds the certificate the server presents
    port, smtp_port = free_port(), free_port()
    cert = tmp_path / "smtp.pem"
    proc = start_sandbox(
        port, tmp_path / "on.log", "--smtp-port", str(smtp_port), "--smtp-cert", str(cert)
    )
    try:
        origin = f"http://127.0.0.1:{port}"
        info = requests.get(f"{origin}/_sandbox/smtp", timeout=10).json()
        served = requests.get(f"{origin}/_sandbox/smtp/certificate", timeout=10)
        assert (info["host"], info["port"]) == ("127.0.0.1", smtp_port)
        assert served.headers["Content-Type"].startswith("text/plain")
        assert cert.read_text() == served.text
        assert "PRIVATE KEY" not in served.text
        with smtplib.SMTP("127.0.0.1", smtp_port, timeout=10) as client:
            client.starttls(context=ssl.create_default_context(cafile=str(cert)))
    finally:
        stop_sandbox(proc)
    # --smtp-port 0: no SMTP, and the sandbox says so
    proc = start_sandbox(port, tmp_path / "off.log", "--smtp-port", "0")
    try:
        off = requests.get(f"http://127.0.0.1:{port}/_sandbox/smtp", timeout=10)
        assert off.status_code == 404
        assert "--smtp-port" in off.json()["error"]
    finally:
        stop_sandbox(proc)
