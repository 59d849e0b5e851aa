"""Google's authorization pages: account choice, granular consent, and their error pages."""

from __future__ import annotations

from urllib.parse import urlencode

from flask import Blueprint, make_response, redirect, render_template, request
from werkzeug.wrappers import Response  # flask.redirect()'s type; flask's subclasses it

from bss.sandbox import clients, tokens
from bss.sandbox.model import email_domain
from bss.sandbox.state import State, current_state

bp = Blueprint("consent", __name__)

ACCOUNT_COOKIE = "sandbox_account"
#: Parameters of the authorization request carried through the consent form.
CARRIED = (
    "client_id",
    "redirect_uri",
    "response_type",
    "scope",
    "state",
    "access_type",
    "prompt",
    "include_granted_scopes",
    "login_hint",
    "code_challenge",
    "code_challenge_method",
    "nonce",
)
BASIC_SCOPES = ("openid", "email", "profile")


class PageError(Exception):
    """An error Google shows as a page instead of redirecting back to the app."""

    def __init__(self, status: int, error: str, message: str, details: str = "") -> None:
        super().__init__(message)
        self.status, self.error, self.message, self.details = status, error, message, details


def _error_page(error: PageError) -> Response:
    html = render_template(
        "error.html",
        status=error.status,
        error=error.error,
        message=error.message,
        details=error.details,
    )
    return make_response(html, error.status)


def _valid_scope(scope: str) -> bool:
    return scope in BASIC_SCOPES or scope.startswith(
        ("https://www.googleapis.com/auth/", "https://mail.google.com/")
    )


def check_request(state: State, params: dict[str, str]) -> dict:
    """The OAuth client, once the request is one Google would render a consent page for."""
    client_id = params.get("client_id")
    if not client_id:
        raise PageError(400, "invalid_request", "Missing required parameter: client_id")
    client = state.clients.get(client_id)
    if client is None or client["kind"] != "web":
        raise PageError(
            401, "invalid_client", "The OAuth client was not found.", f"client_id={client_id}"
        )
    redirect_uri = params.get("redirect_uri")
    if not redirect_uri:
        raise PageError(400, "invalid_request", "Missing required parameter: redirect_uri")
    if not clients.redirect_allowed(client, redirect_uri):
        raise PageError(
            400,
            "redirect_uri_mismatch",
            "You can't sign in to this app because it doesn't comply with Google's OAuth 2.0 "
            "policy. If you're the app developer, register the redirect URI in the Google "
            "Cloud Console.",
            f"redirect_uri={redirect_uri}",
        )
    scopes = params.get("scope", "").split()
    if not scopes:
        raise PageError(400, "invalid_request", "Missing required parameter: scope")
    bad = [s for s in scopes if not _valid_scope(s)]
    if bad:
        raise PageError(
            400, "invalid_scope", "Some requested scopes were invalid.", f"invalid={bad}"
        )
    method = params.get("code_challenge_method")
    if params.get("code_challenge") and method not in (None, "", "S256", "plain"):
        raise PageError(400, "invalid_request", "Invalid code_challenge_method value.")
    return client


def _callback(redirect_uri: str, **query: str) -> Response:
    joiner = "&" if "?" in redirect_uri else "?"
    return redirect(redirect_uri + joiner + urlencode({k: v for k, v in query.items() if v}))


def _account(state: State, params: dict[str, str], chosen: str | None) -> dict | None:
    for candidate in (chosen, params.get("login_hint"), request.cookies.get(ACCOUNT_COOKIE)):
        if candidate and state.user(candidate):
            return state.user(candidate)
    return None


def _internal_only(state: State, client: dict, account: dict) -> None:
    project = state.projects[client["project"]]
    if project["user_type"] != "internal":
        return
    reseller = state.resellers.get(project["reseller"])
    if reseller is None or account["customerId"] != reseller["customer_id"]:
        raise PageError(
            403,
            "org_internal",
            "This client is restricted to users within its organization.",
            f"account={account['primaryEmail']}",
        )


def _issue_code(
    state: State,
    client: dict,
    params: dict[str, str],
    account: dict,
    scopes: list[str],
    *,
    consent_shown: bool,
) -> Response:
    email = account["primaryEmail"]
    _internal_only(state, client, account)
    normalized = tokens.normalize_scopes(scopes)
    granted = tokens.record_grant(
        state, user=email, client_id=client["client_id"], scopes=normalized
    )
    if params.get("include_granted_scopes") == "true":
        normalized = list(granted)
    code = "4/0" + state.random_token(60)
    state.codes[code] = {
        "client_id": client["client_id"],
        "redirect_uri": params["redirect_uri"],
        "user": email,
        "scopes": normalized,
        "offline": consent_shown and params.get("access_type") == "offline",
        "code_challenge": params.get("code_challenge") or None,
        "code_challenge_method": params.get("code_challenge_method") or "plain",
        "nonce": params.get("nonce") or None,
        "expires_at": state.clock.now() + tokens.CODE_TTL,
    }
    response = _callback(
        params["redirect_uri"],
        state=params.get("state", ""),
        code=code,
        scope=" ".join(normalized),
        authuser="0",
        hd=email_domain(email),
        prompt="consent" if consent_shown else "none",
    )
    response.set_cookie(ACCOUNT_COOKIE, email, httponly=True, samesite="Lax")
    return response


@bp.get("/o/oauth2/v2/auth")
@bp.get("/o/oauth2/auth")
def authorize() -> Response:
    state = current_state()
    params = {k: request.args[k] for k in CARRIED if k in request.args}
    with state.lock:
        try:
            client = check_request(state, params)
            if params.get("response_type") != "code":
                return _callback(
                    params["redirect_uri"],
                    error="unsupported_response_type",
                    state=params.get("state", ""),
                )
            scopes = params["scope"].split()
            account = _account(state, params, None)
            prompt = params.get("prompt", "").split()
            already = state.grants.get(
                tokens.grant_key(account["primaryEmail"], client["client_id"]) if account else "",
                [],
            )
            explicit = params.get("login_hint") or request.cookies.get(ACCOUNT_COOKIE)
            if (
                account
                and explicit
                and "consent" not in prompt
                and "select_account" not in prompt
                and set(tokens.normalize_scopes(scopes)) <= set(already)
            ):
                return _issue_code(state, client, params, account, scopes, consent_shown=False)
            accounts = sorted(u["primaryEmail"] for u in state.users.values())
            html = render_template(
                "consent.html",
                app_name=client["name"],
                project=client["project"],
                account=account["primaryEmail"] if account else (accounts or [""])[0],
                accounts=accounts,
                scopes=scopes,
                params=params,
            )
        except PageError as error:
            return _error_page(error)
    return make_response(html, 200)


@bp.post("/o/oauth2/approval")
def approve() -> Response:
    state = current_state()
    params = {k: request.form[k] for k in CARRIED if request.form.get(k)}
    with state.lock:
        try:
            client = check_request(state, params)
            if request.form.get("action") != "allow":
                return _callback(
                    params["redirect_uri"], error="access_denied", state=params.get("state", "")
                )
            account = _account(state, params, request.form.get("account"))
            if account is None:
                raise PageError(400, "invalid_request", "Choose an account the sandbox knows.")
            requested = params["scope"].split()
            ticked = [s for s in request.form.getlist("scope") if s in requested]
            if not ticked:
                return _callback(
                    params["redirect_uri"], error="access_denied", state=params.get("state", "")
                )
            # Google shows its consent screen (and so gives a refresh token) on a first consent
            # or with prompt=consent; otherwise the user only picked an account.
            granted = state.grants.get(
                tokens.grant_key(account["primaryEmail"], client["client_id"]), []
            )
            first = not set(tokens.normalize_scopes(ticked)) <= set(granted)
            shown = first or "consent" in params.get("prompt", "").split()
            return _issue_code(state, client, params, account, ticked, consent_shown=shown)
        except PageError as error:
            return _error_page(error)
