"""Refresh tokens that die on Google's side: six months unused, a password change with Gmail."""

from __future__ import annotations

import google.auth.transport.requests
import pytest
import requests
from google.auth.exceptions import RefreshError

from .helpers import GMAIL_SEND, ORDER

DAY = 24 * 3600
MAIL = "https://mail.google.com/"


def refresh(creds) -> None:
    creds.refresh(google.auth.transport.requests.Request())


def reseller_status(world, access_token: str) -> int:
    return requests.get(
        world.origin + "/apps/reseller/v1/subscriptions",
        headers={"Authorization": f"Bearer {access_token}"},
        timeout=10,
    ).status_code


def assert_dead(creds) -> None:
    with pytest.raises(RefreshError) as excinfo:
        refresh(creds)
    assert "invalid_grant" in str(excinfo.value)
    assert "Token has been expired or revoked." in str(excinfo.value)


def test_a_refresh_token_unused_for_six_months_dies(world):
    # Given a stored refresh token
    creds = world.credentials([ORDER])
    refresh(creds)

    # When it is used again just under six months later, it works and counts as used
    world.sandbox.post("/_sandbox/clock", {"advance_seconds": 182 * DAY})
    refresh(creds)
    world.sandbox.post("/_sandbox/clock", {"advance_seconds": 182 * DAY})
    refresh(creds)

    # Then left alone for six months (183 days) it is dead
    world.sandbox.post("/_sandbox/clock", {"advance_seconds": 183 * DAY})
    assert_dead(creds)


def test_an_idle_token_dies_even_if_another_one_of_the_same_grant_is_in_use(world):
    # Given two refresh tokens for the same account and client, only one of them used
    idle, busy = world.credentials([ORDER]), world.credentials([ORDER])
    for _ in range(2):
        world.sandbox.post("/_sandbox/clock", {"advance_seconds": 100 * DAY})
        refresh(busy)

    # Then the idle one is dead after six months and the busy one lives
    assert_dead(idle)
    refresh(busy)


def test_a_password_change_kills_refresh_tokens_holding_gmail_scopes(world):
    # Given the admin's tokens: one with gmail.send, one with full mail, one without Gmail
    with_gmail = world.credentials([GMAIL_SEND, ORDER])
    with_mail = world.credentials([MAIL])
    without_gmail = world.credentials([ORDER])
    for creds in (with_gmail, with_mail, without_gmail):
        refresh(creds)
    # And another account's Gmail token
    world.sandbox.post(
        f"/_sandbox/resellers/{world.reseller}/users", {"email": f"ops@{world.reseller}"}
    )
    others = world.credentials([GMAIL_SEND], user=f"ops@{world.reseller}")
    refresh(others)
    access_token = with_gmail.token
    assert reseller_status(world, access_token) == 200

    # When the admin changes their password
    answer = world.sandbox.post(
        f"/_sandbox/users/{world.admin}/password", {"password": "a new passphrase"}
    )
    assert answer == {"user": world.admin, "revoked": 2}

    # Then the Gmail-scoped refresh tokens are dead, with Google's answer
    assert_dead(with_gmail)
    assert_dead(with_mail)
    # And the access token minted from one of them no longer opens the API
    assert reseller_status(world, access_token) == 401
    # And tokens without Gmail scopes, or of other accounts, live on
    refresh(without_gmail)
    refresh(others)


def test_password_changes_are_checked(world):
    world.sandbox.post(f"/_sandbox/users/{world.admin}/password", {"password": "short"}, expect=400)
    world.sandbox.post(
        "/_sandbox/users/nobody@reseller.example/password",
        {"password": "long enough"},
        expect=404,
    )
