"""Gmail users.messages.send with a raw MIME message."""

from __future__ import annotations

import base64
from email.message import EmailMessage

import pytest
from googleapiclient.errors import HttpError

from .helpers import GMAIL_SEND, error_of
from .schema import assert_schema


def raw_message(to="ann@customer.example", subject="Welcome", text="Your workspace is ready."):
    message = EmailMessage()
    message["From"] = "admin@reseller.example"
    if to:
        message["To"] = to
    message["Subject"] = subject
    message.set_content(text)
    message.add_alternative(f"<p>{text}</p>", subtype="html")
    return base64.urlsafe_b64encode(message.as_bytes()).decode()


@pytest.fixture
def gmail(world):
    return world.service("gmail", "v1", credentials=world.credentials([GMAIL_SEND]))


def test_send_keeps_the_message_for_inspection(gmail, sandbox, world):
    sent = gmail.users().messages().send(userId="me", body={"raw": raw_message()}).execute()
    assert_schema("gmail", "Message", sent)
    assert sent["labelIds"] == ["SENT"]
    (mail,) = sandbox.state()["sent_mail"]
    assert mail["id"] == sent["id"]
    assert (mail["from"], mail["to"], mail["subject"]) == (
        world.admin,
        ["ann@customer.example"],
        "Welcome",
    )
    assert mail["body"].strip() == "Your workspace is ready."
    assert "<p>" in mail["html"]


def test_send_as_the_account_by_email_too(gmail, world):
    assert (
        gmail.users()
        .messages()
        .send(userId=world.admin, body={"raw": raw_message()})
        .execute()["id"]
    )


def test_sending_as_someone_else_is_refused(gmail):
    with pytest.raises(HttpError) as excinfo:
        gmail.users().messages().send(
            userId="other@reseller.example", body={"raw": raw_message()}
        ).execute()
    assert error_of(excinfo)[0] == 403


@pytest.mark.parametrize("body", [{}, {"raw": raw_message(to=None)}])
def test_a_message_needs_raw_and_a_recipient(gmail, body):
    with pytest.raises(HttpError) as excinfo:
        gmail.users().messages().send(userId="me", body=body).execute()
    assert error_of(excinfo)[:2] == (400, "invalidArgument")


def test_gmail_needs_a_gmail_scope(world):
    from .helpers import ORDER

    gmail = world.service("gmail", "v1", credentials=world.credentials([ORDER]))
    with pytest.raises(HttpError) as excinfo:
        gmail.users().messages().send(userId="me", body={"raw": raw_message()}).execute()
    assert error_of(excinfo)[:2] == (403, "insufficientPermissions")


def test_send_as_a_media_upload(world, sandbox):
    # google-api-python-client keeps https for upload URLs, so post the upload directly
    import requests

    token = sandbox.tokens(world.client["client_id"], world.admin, [GMAIL_SEND])["access_token"]
    raw = base64.urlsafe_b64decode(raw_message(subject="Uploaded"))
    sent = requests.post(
        world.origin + "/upload/gmail/v1/users/me/messages/send?uploadType=media",
        data=raw,
        headers={"Authorization": f"Bearer {token}", "Content-Type": "message/rfc822"},
        timeout=10,
    )
    assert sent.status_code == 200 and sent.json()["labelIds"] == ["SENT"]
    assert [m["subject"] for m in sandbox.state()["sent_mail"]] == ["Uploaded"]
