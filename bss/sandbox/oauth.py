"""Google's OAuth 2.0 token side: /token, /revoke, OIDC discovery, JWKS, userinfo."""

from __future__ import annotations

import base64
import hashlib
import time
from urllib.parse import unquote

from flask import Blueprint, Response, g, request

from bss.sandbox import clients, crypto, faults, tokens
from bss.sandbox.errors import DropConnection, OAuthError, json_response
from bss.sandbox.state import State, current_state

bp = Blueprint("oauth", __name__)

JWT_BEARER = "urn:ietf:params:oauth:grant-type:jwt-bearer"
#: The audience google-auth puts in service-account assertions, whatever the token_uri.
GOOGLE_TOKEN_AUDIENCE = "https://oauth2.googleapis.com/token"  # noqa: S105 - a URL
_UNAUTHORIZED_CLIENT = (
    "Client is unauthorized to retrieve access tokens using this method, "
    "or client not authorized for any of the scopes requested."
)
_BAD_JWT_TIME = (
    "Invalid JWT: Token must be a short-lived token (60 minutes) and in a "
    "reasonable timeframe. Check your iat and exp values in the JWT claim."
)


def origin() -> str:
    return request.host_url.rstrip("/")


def _params() -> dict[str, str]:
    if request.is_json:
        data = request.get_json(silent=True) or {}
        return {k: str(v) for k, v in data.items()}
    return request.form.to_dict()


def authenticate_client(state: State, params: dict[str, str]) -> dict:
    """The OAuth client from HTTP Basic or from client_id/client_secret form fields."""
    client_id, secret = params.get("client_id"), params.get("client_secret")
    auth = request.headers.get("Authorization", "")
    if auth[:6].lower() == "basic ":
        try:
            raw = base64.b64decode(auth[6:].strip()).decode()
            basic_id, _, basic_secret = raw.partition(":")
        except (ValueError, UnicodeDecodeError):
            raise OAuthError(401, "invalid_client", "Unauthorized") from None
        client_id, secret = unquote(basic_id), unquote(basic_secret)
    if not client_id:
        raise OAuthError(400, "invalid_request", "Could not determine client ID from request.")
    g.call["client_id"] = client_id
    client = state.clients.get(client_id)
    if client is None or client["kind"] != "web":
        raise OAuthError(401, "invalid_client", "The OAuth client was not found.")
    g.call["project"] = client["project"]
    if secret != client["client_secret"]:
        raise OAuthError(401, "invalid_client", "Unauthorized")
    return client


def _code_grant(state: State, client: dict, params: dict[str, str]) -> dict:
    code = params.get("code")
    if not code:
        raise OAuthError(400, "invalid_request", "Missing required parameter: code")
    record = state.codes.pop(code, None)  # single use
    if (
        record is None
        or record["client_id"] != client["client_id"]
        or record["expires_at"] <= state.clock.now()
    ):
        raise OAuthError(400, "invalid_grant", "Bad Request")
    redirect_uri = params.get("redirect_uri") or ""
    if redirect_uri != record["redirect_uri"] or not clients.redirect_allowed(client, redirect_uri):
        raise OAuthError(400, "redirect_uri_mismatch", "Bad Request")
    challenge = record.get("code_challenge")
    if challenge:
        verifier = params.get("code_verifier")
        if not verifier:
            raise OAuthError(400, "invalid_grant", "Missing code verifier.")
        if record["code_challenge_method"] == "S256":
            digest = hashlib.sha256(verifier.encode()).digest()
            verifier = base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
        if verifier != challenge:
            raise OAuthError(400, "invalid_grant", "Invalid code verifier.")
    g.call["user"] = record["user"]
    refresh = None
    if record["offline"]:
        refresh = tokens.issue_refresh_token(
            state, client_id=client["client_id"], user=record["user"], scopes=record["scopes"]
        )
    access = tokens.issue_access_token(
        state,
        client_id=client["client_id"],
        project=client["project"],
        user=record["user"],
        scopes=record["scopes"],
        refresh_token=refresh["token"] if refresh else None,
    )
    return tokens.token_response(state, access, refresh=refresh, nonce=record.get("nonce"))


def _refresh_grant(state: State, client: dict, params: dict[str, str]) -> dict:
    token = params.get("refresh_token")
    if not token:
        raise OAuthError(400, "invalid_request", "Missing required parameter: refresh_token")
    record = tokens.live_refresh_token(state, token)
    if record["client_id"] != client["client_id"]:
        raise OAuthError(400, "unauthorized_client", "Unauthorized")
    g.call["user"] = record["user"]
    if state.user(record["user"]) is None:  # the account was deleted
        raise tokens.dead_refresh_token()
    tokens.use_refresh_token(state, record)
    scopes = record["scopes"]
    if params.get("scope"):
        asked = tokens.normalize_scopes(params["scope"])
        if not set(asked) <= set(scopes):
            raise OAuthError(400, "invalid_scope", "Bad Request")
        scopes = asked
    access = tokens.issue_access_token(
        state,
        client_id=client["client_id"],
        project=client["project"],
        user=record["user"],
        scopes=scopes,
        refresh_token=token,
    )
    return tokens.token_response(state, access)


def _service_account_for(state: State, assertion: str) -> tuple[dict, dict]:
    try:
        header, claims = crypto.unverified_header(assertion), crypto.unverified_claims(assertion)
    except Exception:  # any malformed JWT gets Google's one answer
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None
    account = next(
        (
            c
            for c in state.clients.values()
            if c["kind"] == "service_account" and c["client_email"] == claims.get("iss")
        ),
        None,
    )
    public = account and account["keys"].get(header.get("kid", ""))
    if public is None and account and not header.get("kid"):
        public = next(iter(account["keys"].values()), None)
    if account is None or public is None:
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.")
    try:
        return account, crypto.verify(assertion, public["public_pem"])
    except Exception:
        raise OAuthError(400, "invalid_grant", "Invalid JWT Signature.") from None


def _jwt_bearer_grant(state: State, params: dict[str, str]) -> dict:
    assertion = params.get("assertion")
    if not assertion:
        raise OAuthError(400, "invalid_request", "Missing required parameter: assertion")
    account, claims = _service_account_for(state, assertion)
    g.call.update(client_id=account["client_id"], project=account["project"])
    if claims.get("aud") not in (GOOGLE_TOKEN_AUDIENCE, origin() + "/token"):
        raise OAuthError(
            400,
            "invalid_grant",
            f"Invalid JWT: Failed audience check. The right audience is {GOOGLE_TOKEN_AUDIENCE}",
        )
    now, iat, exp = time.time(), claims.get("iat"), claims.get("exp")
    if (
        not isinstance(iat, int | float)
        or not isinstance(exp, int | float)
        or exp - iat > 3600
        or iat > now + 300
        or exp < now - 300
    ):
        raise OAuthError(400, "invalid_grant", _BAD_JWT_TIME)
    scopes = tokens.normalize_scopes(claims.get("scope", ""))
    if not scopes:
        raise OAuthError(400, "invalid_scope", "Empty or missing scope not allowed.")
    user = account["client_email"]
    if claims.get("sub"):
        subject = state.user(claims["sub"])
        if subject is None:
            raise OAuthError(400, "invalid_grant", "Invalid email or User ID")
        domain = state.customers[subject["customerId"]]["customerDomain"].lower()
        delegated = state.delegations.get(domain, {}).get(account["client_id"], [])
        if not set(scopes) <= set(delegated):
            raise OAuthError(401, "unauthorized_client", _UNAUTHORIZED_CLIENT)
        user = subject["primaryEmail"]
    g.call["user"] = user
    access = tokens.issue_access_token(
        state, client_id=account["client_id"], project=account["project"], user=user, scopes=scopes
    )
    return tokens.token_response(state, access, include_scope=False, identity=False)


def _token_fault(rule: dict) -> OAuthError:
    reason = rule["reason"] if rule["reason"] not in (None, "backendError") else "internal_failure"
    return OAuthError(rule["status"], reason, rule["message"] or "Internal error encountered.")


@bp.post("/token")
def token() -> Response:
    state = current_state()
    g.call = {
        "method": "oauth2.token",
        "client_id": None,
        "project": None,
        "user": None,
        "fault": None,
    }
    with state.lock:
        rule = faults.take_fault(state, "oauth2.token", None)
        delay = faults.latency_for(state, "oauth2.token")
    faults.pause(delay)
    if rule:
        g.call["fault"] = rule["kind"]
        if rule["kind"] == "error":
            raise _token_fault(rule)
        if rule["kind"] == "drop":
            raise DropConnection()
        if rule["kind"] == "timeout":
            faults.pause(rule["seconds"])
    params = _params()
    grant_type = params.get("grant_type")
    with state.lock:
        if grant_type == JWT_BEARER:
            body = _jwt_bearer_grant(state, params)
        else:
            client = authenticate_client(state, params)
            if grant_type == "authorization_code":
                body = _code_grant(state, client, params)
            elif grant_type == "refresh_token":
                body = _refresh_grant(state, client, params)
            else:
                raise OAuthError(400, "unsupported_grant_type", f"Invalid grant_type: {grant_type}")
    if rule and rule["kind"] == "applied_response_lost":
        raise DropConnection()
    return json_response(body, headers={"Cache-Control": "no-store", "Pragma": "no-cache"})


@bp.post("/revoke")
@bp.post("/o/oauth2/revoke")
@bp.get("/o/oauth2/revoke")  # GAM revokes with GET ...?token=
def revoke() -> Response:
    state = current_state()
    token = request.form.get("token") or request.args.get("token", "")
    with state.lock:
        revoked = tokens.revoke(state, token)
    if not revoked:
        raise OAuthError(400, "invalid_token", "Token expired or revoked")
    return json_response({})


@bp.get("/.well-known/openid-configuration")
def openid_configuration() -> Response:
    base = origin()
    return json_response(
        {
            "issuer": tokens.current_issuer(),
            "authorization_endpoint": base + "/o/oauth2/v2/auth",
            "token_endpoint": base + "/token",
            "userinfo_endpoint": base + "/v1/userinfo",
            "revocation_endpoint": base + "/revoke",
            "jwks_uri": base + "/oauth2/v3/certs",
            "response_types_supported": ["code"],
            "subject_types_supported": ["public"],
            "id_token_signing_alg_values_supported": ["RS256"],
            "scopes_supported": ["openid", "email", "profile"],
            "token_endpoint_auth_methods_supported": ["client_secret_post", "client_secret_basic"],
            "claims_supported": [
                "aud",
                "email",
                "email_verified",
                "exp",
                "family_name",
                "given_name",
                "hd",
                "iat",
                "iss",
                "name",
                "picture",
                "sub",
            ],
            "code_challenge_methods_supported": ["plain", "S256"],
            "grant_types_supported": ["authorization_code", "refresh_token", JWT_BEARER],
        }
    )


@bp.get("/oauth2/v3/certs")
def jwks() -> Response:
    state = current_state()
    with state.lock:
        key = tokens.signing_key(state)
    return json_response({"keys": [crypto.jwk(key["kid"], key["pem"])]})


@bp.get("/oauth2/v1/certs")
def x509_certs() -> Response:
    state = current_state()
    with state.lock:
        key = tokens.signing_key(state)
    return json_response({key["kid"]: crypto.certificate_pem(key["pem"], "sandbox-oidc")})


@bp.get("/robot/v1/metadata/x509/<email>")
def service_account_certs(email: str) -> Response:
    state = current_state()
    with state.lock:
        account = next(
            (
                c
                for c in state.clients.values()
                if c["kind"] == "service_account" and c["client_email"] == email
            ),
            None,
        )
    if account is None:
        return json_response({"error": "not found"}, 404)
    return json_response({kid: k["certificate"] for kid, k in account["keys"].items()})


@bp.get("/v1/userinfo")
@bp.get("/oauth2/v3/userinfo")
@bp.get("/oauth2/v2/userinfo")
@bp.get("/userinfo/v2/me")
def userinfo() -> Response:
    state = current_state()
    header = request.headers.get("Authorization", "")
    token = header[7:].strip() if header[:7].lower() == "bearer " else ""
    with state.lock:
        record = tokens.bearer(state, token) if token else None
        account = state.user(record["user"]) if record else None
    if record is None or account is None:
        return json_response(
            {"error": "invalid_request", "error_description": "Invalid Credentials"},
            401,
            {"WWW-Authenticate": 'Bearer error="invalid_token"'},
        )
    scopes = record["scopes"]
    info = {"sub": account["id"], "hd": account["primaryEmail"].split("@", 1)[1]}
    if tokens.SCOPE_ALIASES["email"] in scopes:
        info.update(email=account["primaryEmail"], email_verified=True)
    if tokens.SCOPE_ALIASES["profile"] in scopes:
        name = account.get("name") or {}
        info.update(
            name=name.get("fullName", ""),
            given_name=name.get("givenName", ""),
            family_name=name.get("familyName", ""),
            picture=tokens.DEFAULT_PICTURE,
        )
    if "/v2/" in request.path:  # the oauth2 v2 Userinfo schema names two fields apart
        info["id"] = info.pop("sub")
        if "email_verified" in info:
            info["verified_email"] = info.pop("email_verified")
    return json_response(info)
