"""Google's tokeninfo endpoints: what an access token or an id token stands for.

``/oauth2/v3/tokeninfo`` (also ``oauth2.googleapis.com/tokeninfo``) answers with OIDC claim
names, every value a string; ``/oauth2/v2/tokeninfo`` (the oauth2 v2 discovery document's
``tokeninfo`` method, which GAM calls) and the older ``/oauth2/v1/tokeninfo`` answer with
``issued_to``/``audience``/``user_id``/``verified_email`` and JSON numbers and booleans.
"""

from __future__ import annotations

import time
from typing import Any

from flask import Blueprint, Response, g, request

from bss.sandbox import crypto, tokens
from bss.sandbox.errors import json_response
from bss.sandbox.state import State, current_state

bp = Blueprint("tokeninfo", __name__)


def _invalid() -> Response:
    # Google's answer for an unknown, expired, revoked or malformed token, on every version.
    return json_response({"error": "invalid_token", "error_description": "Invalid Value"}, 400)


def _log_as(method: str) -> None:
    g.call = {"method": method, "client_id": None, "project": None, "user": None, "fault": None}


def _param(name: str) -> str:
    return request.values.get(name, "").strip()


def _access_token_info(state: State, token: str) -> dict[str, Any] | None:
    """The facts both versions report about a live access token, or None."""
    record = tokens.bearer(state, token)
    if record is None:
        return None
    g.call.update(client_id=record["client_id"], project=record["project"], user=record["user"])
    now = state.clock.now()
    scopes = record["scopes"]
    account = state.user(record["user"])
    info: dict[str, Any] = {
        "client_id": record["client_id"],
        "scope": " ".join(scopes),
        "exp": int(record["expires_at"]),
        "expires_in": max(0, int(record["expires_at"] - now)),
        "access_type": "offline" if record.get("refresh_token") else "online",
    }
    if tokens.grants_identity(scopes):
        info["sub"] = account["id"] if account else record["user"]
    if tokens.SCOPE_ALIASES["email"] in scopes:
        info["email"] = account["primaryEmail"] if account else record["user"]
    return info


def _id_token_claims(state: State, token: str) -> tuple[dict, dict] | None:
    """(header, claims) of an unexpired id token this sandbox signed, or None."""
    key = tokens.signing_key(state)
    try:
        header = crypto.unverified_header(token)
        claims = crypto.verify(token, crypto.public_pem(key["pem"]))
    except Exception:  # any malformed or foreign token gets Google's one answer
        return None
    if header.get("kid") != key["kid"] or not isinstance(claims.get("exp"), int | float):
        return None
    if claims["exp"] <= time.time():  # JWT times are on the real clock (see clock.py)
        return None
    return header, claims


def _v3(state: State) -> Response:
    access, id_token = _param("access_token"), _param("id_token")
    if access:
        info = _access_token_info(state, access)
        if info is None:
            return _invalid()
        body: dict[str, Any] = {"azp": info["client_id"], "aud": info["client_id"]}
        if "sub" in info:
            body["sub"] = info["sub"]
        body.update(scope=info["scope"], exp=str(info["exp"]), expires_in=str(info["expires_in"]))
        if "email" in info:
            body.update(email=info["email"], email_verified="true")
        body["access_type"] = info["access_type"]
        return json_response(body)
    found = _id_token_claims(state, id_token) if id_token else None
    if found is None:
        return _invalid()
    header, claims = found
    g.call.update(client_id=claims.get("aud"))
    body = {k: str(v).lower() if isinstance(v, bool) else str(v) for k, v in claims.items()}
    body.update(alg=header.get("alg", "RS256"), kid=header["kid"], typ="JWT")
    return json_response(body)


def _v2(state: State) -> Response:
    access, id_token = _param("access_token"), _param("id_token")
    if access:
        info = _access_token_info(state, access)
        if info is None:
            return _invalid()
        body: dict[str, Any] = {"issued_to": info["client_id"], "audience": info["client_id"]}
        if "sub" in info:
            body["user_id"] = info["sub"]
        body.update(scope=info["scope"], expires_in=info["expires_in"])
        if "email" in info:
            body.update(email=info["email"], verified_email=True)
        body["access_type"] = info["access_type"]
        return json_response(body)
    found = _id_token_claims(state, id_token) if id_token else None
    if found is None:
        return _invalid()
    _, claims = found
    g.call.update(client_id=claims.get("aud"))
    body = {
        "issued_to": claims["azp"],
        "audience": claims["aud"],
        "user_id": claims["sub"],
        "expires_in": max(0, int(claims["exp"] - time.time())),
    }
    if "email" in claims:
        body.update(email=claims["email"], verified_email=bool(claims.get("email_verified")))
    return json_response(body)


@bp.route("/oauth2/v3/tokeninfo", methods=["GET", "POST"])
@bp.route("/tokeninfo", methods=["GET", "POST"])
def tokeninfo_v3() -> Response:
    _log_as("oauth2.tokeninfo.v3")
    state = current_state()
    with state.lock:
        return _v3(state)


@bp.route("/oauth2/v2/tokeninfo", methods=["GET", "POST"])
@bp.route("/oauth2/v1/tokeninfo", methods=["GET", "POST"])
def tokeninfo_v2() -> Response:
    _log_as("oauth2.tokeninfo")
    state = current_state()
    with state.lock:
        return _v2(state)
