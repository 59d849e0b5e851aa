"""OAuth `state`: single-use, short-lived, bound to a browser (and for instances to a user and an
instance, for a mailbox's consent to a user and the mail sender), stored in the database with the
PKCE code verifier so any web process can finish it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import update
from sqlmodel import Session, col, delete

from bss.crypto import Vault
from bss.errors import OAuthFlowError
from bss.models import OAuthState, utcnow

# Long enough to read Google's consent page; short enough that a leaked URL soon goes stale.
STATE_TTL = timedelta(minutes=10)


def digest(value: str) -> str:
    """The stored form of a state or browser id: a database reader cannot replay it."""
    return hashlib.sha256(value.encode()).hexdigest()


def save_state(
    session: Session,
    *,
    vault: Vault,
    purpose: str,
    state: str,
    code_verifier: str,
    browser_id: str,
    redirect_uri: str,
    user_id: int | None = None,
    instance_id: int | None = None,
    sender_id: int | None = None,
    client_id: str = "",
    nonce: str | None = None,
    display: str = "popup",
) -> OAuthState:
    """Remember an authorization that was just sent to Google."""
    now = utcnow()
    # States nobody came back for are useless after a day: sweep them here.
    session.exec(delete(OAuthState).where(col(OAuthState.expires_at) < now - timedelta(days=1)))
    row = OAuthState(
        state_hash=digest(state),
        purpose=purpose,
        user_id=user_id,
        instance_id=instance_id,
        sender_id=sender_id,
        client_id=client_id,
        browser_hash=digest(browser_id),
        redirect_uri=redirect_uri,
        code_verifier_enc=vault.encrypt(code_verifier),
        nonce=nonce,
        display=display if display in ("popup", "page") else "popup",
        created_at=now,
        expires_at=now + STATE_TTL,
    )
    session.add(row)
    session.flush()
    return row


@dataclass(frozen=True)
class ConsumedState:
    """A state that was valid and is now spent, with what the code exchange needs."""

    row: OAuthState
    code_verifier: str


def peek_state(session: Session, state: str | None) -> OAuthState | None:
    """The row of `state` if there is one (to know where to report a problem)."""
    return session.get(OAuthState, digest(state)) if state else None


def consume_state(
    session: Session, *, vault: Vault, state: str | None, purpose: str, browser_id: str | None
) -> ConsumedState:
    """Spend `state`, or raise OAuthFlowError saying what is wrong with it.

    The caller must commit before talking to Google: the conditional update is what makes a
    second use fail, in this process or any other.
    """
    if not state:
        raise OAuthFlowError(
            "Google's answer carried no `state`, so it cannot be matched to an authorization "
            "started here. Nothing was changed: click the button again.",
            reason="state_missing",
        )
    row = session.get(OAuthState, digest(state))
    if row is None or row.purpose != purpose:
        raise OAuthFlowError(
            "This answer from Google matches no authorization started here (unknown `state`). "
            "Nothing was changed: start again from the portal.",
            reason="state_unknown",
        )
    if row.used_at is not None:
        raise OAuthFlowError(
            "This answer from Google was already used (a `state` is good for one use only). "
            "Nothing was changed: start again from the portal.",
            reason="state_reused",
        )
    now = utcnow()
    if row.expires_at <= now:
        minutes = int(STATE_TTL.total_seconds() // 60)
        raise OAuthFlowError(
            f"This authorization expired: it must be finished within {minutes} minutes of "
            "clicking the button. Nothing was changed: start again.",
            reason="state_expired",
        )
    if not browser_id or digest(browser_id) != row.browser_hash:
        raise OAuthFlowError(
            "This authorization was started in another browser session. Nothing was changed: "
            "start it again here.",
            reason="state_other_user",
        )
    spent = session.exec(
        update(OAuthState)
        .where(col(OAuthState.state_hash) == row.state_hash, col(OAuthState.used_at).is_(None))
        .values(used_at=now)
    )
    if spent.rowcount != 1:
        raise OAuthFlowError(
            "This answer from Google was already used (a `state` is good for one use only). "
            "Nothing was changed: start again from the portal.",
            reason="state_reused",
        )
    session.refresh(row)
    return ConsumedState(row=row, code_verifier=vault.decrypt(row.code_verifier_enc))
