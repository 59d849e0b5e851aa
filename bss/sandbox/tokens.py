"""OAuth tokens as Google issues them: codes, access tokens, refresh tokens, id tokens."""

from __future__ import annotations

import base64
import hashlib
import time
from typing import Any

from flask import current_app

from bss.sandbox import crypto
from bss.sandbox.errors import OAuthError
from bss.sandbox.state import State

#: Seconds an access token lives (Google answers expires_in 3599).
ACCESS_TOKEN_TTL = 3599
#: Seconds an authorization code can be exchanged.
CODE_TTL = 600
#: Live refresh tokens one account may hold for one OAuth client; the oldest is evicted.
REFRESH_TOKENS_PER_ACCOUNT_AND_CLIENT = 100
#: Refresh-token lifetime for an External app whose consent screen is in "Testing".
TESTING_REFRESH_TOKEN_TTL = 7 * 24 * 3600
#: Google documents "not been used for six months" without a day count; half a year, rounded up.
IDLE_REFRESH_TOKEN_TTL = 183 * 24 * 3600
#: The iss of Google's id tokens; the sandbox's default issuer (create_app(issuer=...)).
GOOGLE_ISSUER = "https://accounts.google.com"
#: Scopes that make Google add an id_token to a token response.
IDENTITY_SCOPES = (
    "openid",
    "https://www.googleapis.com/auth/userinfo.email",
    "https://www.googleapis.com/auth/userinfo.profile",
)
#: The picture Google gives an account without a photo.
DEFAULT_PICTURE = "https://lh3.googleusercontent.com/a/default-user=s96-c"
#: Gmail scopes whose refresh tokens die when the user's password changes.
GMAIL_FULL_SCOPE = "https://mail.google.com/"
GMAIL_SCOPE_PREFIX = "https://www.googleapis.com/auth/gmail."
#: Scope aliases Google expands in what it reports as granted.
SCOPE_ALIASES = {
    "email": "https://www.googleapis.com/auth/userinfo.email",
    "profile": "https://www.googleapis.com/auth/userinfo.profile",
}


def dead_refresh_token() -> OAuthError:
    """What Google answers for a revoked, expired or evicted refresh token."""
    return OAuthError(400, "invalid_grant", "Token has been expired or revoked.")


def normalize_scopes(scopes: list[str] | str) -> list[str]:
    """Split, expand aliases, de-duplicate, keep order."""
    if isinstance(scopes, str):
        scopes = scopes.split()
    out: list[str] = []
    for scope in scopes:
        scope = SCOPE_ALIASES.get(scope, scope)
        if scope and scope not in out:
            out.append(scope)
    return out


def grant_key(user: str, client_id: str) -> str:
    return f"{user.lower()}|{client_id}"


def record_grant(state: State, *, user: str, client_id: str, scopes: list[str]) -> list[str]:
    """Remember what the user consented to for this client; return everything granted."""
    key = grant_key(user, client_id)
    granted = list(state.grants.get(key, []))
    for scope in scopes:
        if scope not in granted:
            granted.append(scope)
    state.grants[key] = granted
    return granted


def issue_refresh_token(state: State, *, client_id: str, user: str, scopes: list[str]) -> dict:
    """A new refresh token; evicts the account's oldest one past Google's limit."""
    now = state.clock.now()
    project = state.project_of_client(client_id)
    expires_at = None
    if project and project["publishing_status"] == "testing" and project["user_type"] == "external":
        expires_at = now + TESTING_REFRESH_TOKEN_TTL
    mine = sorted(
        (
            r
            for r in state.refresh_tokens.values()
            if r["client_id"] == client_id and r["user"] == user.lower()
        ),
        key=lambda r: r["seq"],
    )
    while len(mine) >= REFRESH_TOKENS_PER_ACCOUNT_AND_CLIENT:
        revoke_refresh_token(state, mine.pop(0)["token"])
    record: dict[str, Any] = {
        "token": "1//0" + state.random_token(100),
        "client_id": client_id,
        "user": user.lower(),
        "scopes": list(scopes),
        "issued_at": now,
        "last_used_at": now,
        "expires_at": expires_at,
        "seq": state.next_number(),
    }
    state.refresh_tokens[record["token"]] = record
    return record


def live_refresh_token(state: State, token: str) -> dict:
    """The refresh token's record, or Google's invalid_grant if it is dead."""
    record = state.refresh_tokens.get(token)
    if record is None:
        raise dead_refresh_token()
    now = state.clock.now()
    if record["expires_at"] is not None and now >= record["expires_at"]:
        raise dead_refresh_token()
    if now - record.get("last_used_at", record["issued_at"]) >= IDLE_REFRESH_TOKEN_TTL:
        revoke_refresh_token(state, token)
        raise dead_refresh_token()
    return record


def use_refresh_token(state: State, record: dict) -> None:
    """Note a successful use: a refresh token dies after IDLE_REFRESH_TOKEN_TTL unused."""
    record["last_used_at"] = state.clock.now()


def issue_access_token(
    state: State,
    *,
    client_id: str,
    project: str,
    user: str,
    scopes: list[str],
    refresh_token: str | None = None,
) -> dict:
    """A new access token living ACCESS_TOKEN_TTL seconds on the sandbox clock."""
    now = state.clock.now()
    if len(state.access_tokens) > 5000:
        for key in [k for k, r in state.access_tokens.items() if r["expires_at"] <= now]:
            del state.access_tokens[key]
    record: dict[str, Any] = {
        "token": "ya29." + state.random_token(120),
        "client_id": client_id,
        "project": project,
        "user": user.lower(),
        "scopes": list(scopes),
        "expires_at": now + ACCESS_TOKEN_TTL,
        "refresh_token": refresh_token,
    }
    state.access_tokens[record["token"]] = record
    return record


def bearer(state: State, token: str) -> dict | None:
    """The live access token's record, or None when unknown, revoked or expired."""
    record = state.access_tokens.get(token)
    if record is None or record["expires_at"] <= state.clock.now():
        return None
    return record


def revoke_refresh_token(state: State, token: str) -> None:
    state.refresh_tokens.pop(token, None)
    for key in [k for k, r in state.access_tokens.items() if r["refresh_token"] == token]:
        del state.access_tokens[key]


def holds_gmail_scope(scopes: list[str]) -> bool:
    """True when the scopes include one that Google guards against a password change."""
    return any(s == GMAIL_FULL_SCOPE or s.startswith(GMAIL_SCOPE_PREFIX) for s in scopes)


def password_changed(state: State, email: str) -> int:
    """Revoke the user's refresh tokens holding a Gmail scope (and their access tokens).

    Google does this when an account's password changes; returns how many refresh tokens died.
    """
    user = email.lower()
    doomed = [
        key
        for key, record in state.refresh_tokens.items()
        if record["user"] == user and holds_gmail_scope(record["scopes"])
    ]
    for key in doomed:
        revoke_refresh_token(state, key)
    return len(doomed)


def revoke(state: State, token: str) -> bool:
    """Revoke an access or refresh token and its pair; False if the token is unknown."""
    if token in state.refresh_tokens:
        revoke_refresh_token(state, token)
        return True
    record = state.access_tokens.pop(token, None)
    if record is None:
        return False
    if record["refresh_token"]:
        revoke_refresh_token(state, record["refresh_token"])
    return True


def revoke_grant(state: State, *, user: str, client_id: str) -> int:
    """Remove the app's access for the account entirely; returns tokens revoked."""
    user = user.lower()
    state.grants.pop(grant_key(user, client_id), None)

    def mine(record: dict) -> bool:
        return record["user"] == user and record["client_id"] == client_id

    access = [k for k, r in state.access_tokens.items() if mine(r)]
    refresh = [k for k, r in state.refresh_tokens.items() if mine(r)]
    for key in access:
        del state.access_tokens[key]
    for key in refresh:
        revoke_refresh_token(state, key)
    return len(access) + len(refresh)


def signing_key(state: State) -> dict[str, str]:
    """The sandbox's OIDC signing key, created on first use."""
    if state.signing_key is None:
        state.signing_key = {"kid": crypto.new_key_id(), "pem": crypto.new_private_key_pem()}
    return state.signing_key


def current_issuer() -> str:
    """The iss of the running app's id tokens: Google's unless create_app(issuer=...) says."""
    return str(current_app.config.get("SANDBOX_ISSUER") or GOOGLE_ISSUER)


def grants_identity(scopes: list[str]) -> bool:
    """True when Google would add an id_token: openid, email or profile was granted."""
    return any(scope in IDENTITY_SCOPES for scope in normalize_scopes(scopes))


def id_token(
    state: State,
    *,
    issuer: str,
    client_id: str,
    user: str,
    scopes: list[str],
    access_token: str,
    nonce: str | None = None,
) -> str:
    """An OIDC id_token signed RS256 with the key published at the JWKS endpoint."""
    account = state.user(user) or {"id": user, "primaryEmail": user, "name": {}}
    now = int(time.time())
    digest = hashlib.sha256(access_token.encode()).digest()
    claims = {
        "iss": issuer,
        "azp": client_id,
        "aud": client_id,
        "sub": account["id"],
        "at_hash": base64.urlsafe_b64encode(digest[:16]).rstrip(b"=").decode(),
        "iat": now,
        "exp": now + 3600,
    }
    # Every sandbox account is a Workspace account, so hd is always there.
    claims["hd"] = account["primaryEmail"].split("@", 1)[1]
    if SCOPE_ALIASES["email"] in scopes:
        claims["email"] = account["primaryEmail"]
        claims["email_verified"] = True
    if SCOPE_ALIASES["profile"] in scopes:
        name = account.get("name") or {}
        claims.update(
            {
                "name": name.get("fullName", ""),
                "given_name": name.get("givenName", ""),
                "family_name": name.get("familyName", ""),
                "picture": account.get("thumbnailPhotoUrl") or DEFAULT_PICTURE,
            }
        )
    if nonce:
        claims["nonce"] = nonce
    key = signing_key(state)
    return crypto.sign(claims, key["pem"], key["kid"])


def token_response(
    state: State,
    access: dict,
    *,
    refresh: dict | None = None,
    nonce: str | None = None,
    include_scope: bool = True,
    identity: bool = True,
) -> dict:
    """The JSON body Google's token endpoint answers with.

    With ``identity`` (user tokens, not service accounts) an id_token comes along whenever an
    identity scope was granted, on code exchanges and refreshes alike, as Google does. A new
    refresh token with a lifetime comes with ``refresh_token_expires_in`` (seconds).
    """
    body: dict = {
        "access_token": access["token"],
        "expires_in": ACCESS_TOKEN_TTL,
        "token_type": "Bearer",
    }
    if include_scope:
        body["scope"] = " ".join(access["scopes"])
    if refresh is not None:
        body["refresh_token"] = refresh["token"]
        if refresh["expires_at"] is not None:
            # Google tells a refresh token's lifetime when it has one (time-limited access; here
            # also an External app in Testing, whose tokens die after 7 days).
            left = refresh["expires_at"] - state.clock.now()
            body["refresh_token_expires_in"] = max(0, int(left))
    if identity and grants_identity(access["scopes"]):
        body["id_token"] = id_token(
            state,
            issuer=current_issuer(),
            client_id=access["client_id"],
            user=access["user"],
            scopes=access["scopes"],
            access_token=access["token"],
            nonce=nonce,
        )
    return body
