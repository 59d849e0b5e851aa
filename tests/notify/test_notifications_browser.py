"""The Notifications page in a real browser (headless chromium driven by Playwright), against a
real web server, a real worker on the mail queue and the sandbox's consent page and Gmail SMTP
server: a distributor's admin adds a recipient and an SMTP sender, authenticates its mailbox in
the pop-up, sees until when its tokens work, sends a test message that arrives at Google, and
renames the sender on its Edit page."""

from __future__ import annotations

import re
import sys
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
import requests
from werkzeug.serving import make_server

from bss.crypto import vault_from_settings
from bss.db import session_scope
from bss.instances import create_instance
from bss.models import Distributor, MailSender
from bss.settings import Settings
from bss.tools import free_port
from tests.support.browser import csp_violations, keep_screenshot
from tests.support.portal import (
    ARTIFACTS,
    PASSWORD,
    Google,
    make_account,
    portal_settings,
    set_up_google,
)
from web import create_app

SHOTS = ARTIFACTS.parent / "notifications"


@dataclass
class LiveMail:
    """The portal served over HTTP, a mail worker, and the (sandbox) Google behind both."""

    url: str
    google: Google
    settings: Settings


@pytest.fixture
def live(
    tmp_path: Path, database_url, secret_keys, supervisor, sandbox, sandbox_smtp
) -> Iterator[LiveMail]:
    # A Redis of the test's own: no other worker of the session takes its mail
    redis_url = supervisor.start_redis(port=free_port())
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    google = set_up_google(sandbox, base)
    host, smtp_port, ca_file = sandbox_smtp
    smtp = {"google_smtp_host": host, "google_smtp_port": smtp_port, "google_smtp_ca_file": ca_file}
    settings = portal_settings(tmp_path, database_url, secret_keys, redis_url, google, base)
    settings = settings.model_copy(update=smtp)
    worker = supervisor.start(
        f"mail-worker-{port}",
        [
            sys.executable,
            "-m",
            "dramatiq",
            "workers",
            "--processes",
            "1",
            "--threads",
            "1",
            "--queues",
            "mail",
        ],
        env={
            "BSS_HOME": str(tmp_path),
            "DATABASE_URL": database_url,
            "REDIS_URL": redis_url,
            "BSS_BROKER_URL": "",
            "BSS_SECRET_KEYS": secret_keys,
            "GOOGLE_SANDBOX_URL": sandbox,
            "GOOGLE_SMTP_HOST": host,
            "GOOGLE_SMTP_PORT": str(smtp_port),
            "GOOGLE_SMTP_CA_FILE": ca_file,
            "BSS_PUBLIC_BASE_URLS": base,
            "GOOGLE_HTTP_TIMEOUT": "5",
        },
    )
    server = make_server("127.0.0.1", port, create_app(settings), threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield LiveMail(base, google, settings)
    finally:
        server.shutdown()
        thread.join(timeout=10)
        worker.terminate()
        worker.wait(timeout=30)


@pytest.fixture
def page(browser) -> Iterator[object]:
    context = browser.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    page.set_default_timeout(15000)
    yield page
    context.close()


def shot(page, name: str) -> None:
    keep_screenshot(page, SHOTS / f"{name}.png")


def test_an_admin_sets_up_an_smtp_sender_and_a_test_message_arrives(page, live: LiveMail):
    refused = csp_violations(page.context)
    google = live.google
    # Given a distributor's admin whose distributor has an instance (its OAuth client)
    account = make_account(live.settings.database_url)
    with session_scope(live.settings.database_url) as s:
        distributor = s.get(Distributor, account.distributor_id)
        create_instance(
            s,
            vault=vault_from_settings(live.settings),
            distributor=distributor,
            name="main",
            client_id=google.client_id,
            client_secret=google.client_secret,
        )
    page.goto(live.url + "/sign-in")
    page.fill("#email", account.email)
    page.fill("#password", PASSWORD)
    page.click("#sign-in")
    page.wait_for_selector("#site-nav")

    # When they open Notifications from the header
    page.click("#nav-notifications")
    page.wait_for_selector("#recipients")
    assert page.get_attribute("#nav-notifications", "aria-current") == "page"

    # And add a recipient (every topic is ticked to begin with)
    ops = f"ops-{uuid.uuid4().hex[:6]}@{google.reseller}"
    page.fill("#recipient-address", ops)
    page.click("#add-recipient")
    page.wait_for_selector(f"#recipient-list >> text={ops}")

    # And add an SMTP sender: only the fields that mode needs are shown
    page.check("#sender-mode-smtp_xoauth2")
    assert page.is_visible("#sender-instance") and not page.is_visible("#sender-key")
    page.check("#sender-mode-service_account")
    assert page.is_visible("#sender-key") and not page.is_visible("#sender-instance")
    page.check("#sender-mode-smtp_xoauth2")
    page.fill("#sender-name", "alerts")
    page.select_option("#sender-instance", label="main")
    page.click("#add-sender")
    page.wait_for_selector("article.sender")
    sender_id = page.get_attribute("article.sender", "data-sender-id")
    assert page.inner_text(f"#sender-{sender_id}-status") == "Not authenticated"
    shot(page, "01-sender-added")

    # And click Authenticate mailbox: Google's consent page opens in a pop-up
    with page.expect_popup() as opened:
        page.click(f"#authenticate-sender-{sender_id}")
    popup = opened.value
    popup.wait_for_selector("#consent_form")
    popup.select_option("select[name=account]", google.admin)
    shot(popup, "02-google-consent")
    with popup.expect_event("close", timeout=15000):
        popup.click("#submit_approve_access")

    # Then the page shows the sender working, as the mailbox, and until when its tokens work
    page.wait_for_function(f"document.querySelector('#sender-{sender_id}').dataset.status === 'ok'")
    assert page.inner_text(f"#sender-{sender_id}-status") == "OK"
    assert page.inner_text(f"#sender-{sender_id}-from") == google.admin
    assert re.fullmatch(
        r"Access token valid until \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(in \d+ min\)",
        page.inner_text(f"#sender-{sender_id}-access").strip(),
    )
    assert page.inner_text(f"#sender-{sender_id}-refresh").strip() == (
        "Refresh token: no expiry set by Google"
    )
    assert "is authenticated" in page.inner_text(".flash-ok")

    # When they send a test message to the recipient
    page.fill(f"#test-to-{sender_id}", ops)
    page.click(f"#test-sender-{sender_id}")
    page.wait_for_selector(".flash-ok >> text=Test message queued")

    # Then the recent mail shows it sent, without reloading the page
    page.wait_for_selector("#mail-list [data-state=sent]", timeout=30000)
    row = page.inner_text("#mail-list tbody tr")
    assert ops in row and "Test message through sender alerts" in row
    shot(page, "03-test-message-sent")
    # And it arrived at Google through SMTP, from the mailbox, saying which sender sent it
    arrived = requests.get(
        f"{google.sandbox}/_sandbox/mail", params={"to": ops}, timeout=10
    ).json()["messages"]
    assert len(arrived) == 1
    mail = arrived[0]
    assert mail["via"] == "smtp" and mail["sender"] == google.admin
    assert "'alerts'" in mail["body"] and "XOAUTH2" in mail["body"]
    with session_scope(live.settings.database_url) as s:
        assert s.get(MailSender, int(sender_id)).last_sent_at is not None

    # When they click Edit: the form shows what is stored
    page.click(f"#edit-sender-{sender_id}")
    page.wait_for_selector("#sender-edit-form")
    assert page.input_value("#sender-edit-name") == "alerts"
    assert page.input_value("#sender-edit-from") == google.admin
    shot(page, "06-sender-edit")
    # And rename the sender and save
    page.fill("#sender-edit-name", "ops-alerts")
    page.click("#save-sender")
    # Then the page shows the new name, the mailbox still authenticated
    page.wait_for_selector(".flash-ok >> text=Sender 'alerts' is saved. Renamed to 'ops-alerts'.")
    assert page.inner_text(f"#sender-{sender_id} h3") == "ops-alerts"
    assert page.inner_text(f"#sender-{sender_id}-status") == "OK"
    assert refused == []


def test_the_mail_page_lists_every_sender_failing_first_and_the_platforms_own(
    browser, dashboard_app, world
):
    from bss.models import MailMessage, MailState, SenderMode, SenderStatus, utcnow
    from tests.support.live_dashboard import new_page, page_width, served, sign_in

    # Given a working sender of A, a failing one of B, and mail of both
    db = dashboard_app.config["BSS_SETTINGS"].database_url
    with session_scope(db) as s:
        for side, status, error in (
            (world.a, SenderStatus.OK, None),
            (world.b, SenderStatus.FAILING, "535 5.7.8 Username and Password not accepted"),
        ):
            sender = MailSender(
                distributor_id=side.distributor_id,
                name="alerts",
                mode=SenderMode.SMTP_XOAUTH2,
                from_address=f"alerts@{side.instance_name}.example",
                status=status,
                last_error=error,
                access_token_expires_at=utcnow(),
            )
            s.add(sender)
            s.flush()
            s.add(
                MailMessage(
                    distributor_id=side.distributor_id,
                    topic="instance.needs_reauth",
                    sender_id=sender.id,
                    recipients=[f"ops@{side.instance_name}.example"],
                    subject=f"[BSS] Instance {side.instance_name} needs re-authentication",
                    body="a body the page never shows",
                    state=MailState.FAILED if error else MailState.SENT,
                    last_error=error,
                    sent_at=None if error else utcnow(),
                )
            )
    with served(dashboard_app) as base:
        page = new_page(browser)
        refused = csp_violations(page.context)
        sign_in(page, base, world.users["operator"].email, then="/dashboard/mail")
        page.wait_for_selector("#all-senders")
        # Then the failing senders come first, B's with Google's answer, before A's working one
        # (other tests' senders in this database may be listed too)
        rows = page.locator("#all-senders tbody tr").all_inner_texts()
        failing = ["Failing" in row for row in rows]
        assert failing == sorted(failing, reverse=True), rows
        b_row = next(i for i, row in enumerate(rows) if world.b.distributor_name in row)
        a_row = next(i for i, row in enumerate(rows) if world.a.distributor_name in row)
        assert "Failing" in rows[b_row] and "535 5.7.8" in rows[b_row] and b_row < a_row
        # And the mail of both distributors is listed, without a body
        mail = page.inner_text("#mail-list")
        assert world.a.instance_name in mail and world.b.instance_name in mail
        assert "a body the page never shows" not in page.content()
        # And the platform's own senders and recipients are managed here, with the same forms
        assert page.is_visible("#platform") and page.is_visible("#recipient-form")
        page.click("#add-sender-section summary")
        page.check("#sender-mode-service_account")
        assert page.is_visible("#sender-key") and not page.is_visible("#sender-instance")
        shot(page, "04-dashboard-mail")
        # When the operator picks distributor A, only A's mail and senders show
        with page.expect_navigation():
            page.select_option("#picker-distributor", str(world.a.distributor_id))
        assert page.url.endswith(f"/dashboard/distributors/{world.a.distributor_id}/mail")
        assert world.b.instance_name not in page.inner_text("#mail-list")
        assert world.b.distributor_name not in page.inner_text("#all-senders")
        with page.expect_navigation():
            page.select_option("#picker-distributor", "")
        assert page.url.endswith("/dashboard/mail")
        # And the page fits a phone
        phone = new_page(browser, width=400)
        sign_in(phone, base, world.users["operator"].email, then="/dashboard/mail")
        shot(phone, "05-dashboard-mail-phone")
        assert page_width(phone) <= 400
        assert refused == []
