"""The sandbox's own control API (JSON): accounts, projects, clients, keys, tokens."""

from __future__ import annotations

import secrets
import string
from typing import Any

from flask import Blueprint, Response, request

from bss.sandbox import clients, crypto, tokens
from bss.sandbox.api import ALL_APIS
from bss.sandbox.errors import ControlError, json_response
from bss.sandbox.model import DOMAIN_RE, EMAIL_RE, email_domain, new_customer, new_user
from bss.sandbox.state import State, current_state

bp = Blueprint("control", __name__, url_prefix="/_sandbox")

USER_TYPES = ("external", "internal")
PUBLISHING_STATUSES = ("production", "testing")


def payload() -> dict:
    data = request.get_json(silent=True) if request.get_data() else {}
    if not isinstance(data, dict):
        raise ControlError(400, "the body must be a JSON object")
    return data


def required(data: dict, name: str) -> str:
    value = data.get(name)
    if not isinstance(value, str) or not value:
        raise ControlError(400, f"{name} is required")
    return value


def origin() -> str:
    return request.host_url.rstrip("/")


def reseller_summary(state: State, reseller: dict) -> dict:
    admins = sorted(
        u["primaryEmail"]
        for u in state.users.values()
        if u["customerId"] == reseller["customer_id"] and u["isAdmin"]
    )
    return {
        "domain": reseller["domain"],
        "admin_email": reseller["admin_email"],
        "admins": admins,
        "customer_id": reseller["customer_id"],
        "api_access": reseller["api_access"],
    }


def _reseller(state: State, domain: str) -> dict:
    reseller = state.resellers.get(domain.lower())
    if reseller is None:
        raise ControlError(404, f"no reseller {domain!r}")
    return reseller


def _check_account(state: State, email: str) -> None:
    if not EMAIL_RE.match(email):
        raise ControlError(400, f"{email!r} is not an email address")
    if state.user(email):
        raise ControlError(409, f"{email} exists already")


def _add_account(state: State, customer_id: str, email: str, data: dict, admin: bool) -> dict:
    _check_account(state, email)
    local = email.split("@", 1)[0]
    return new_user(
        state,
        email=email,
        customer_id=customer_id,
        is_admin=admin,
        given_name=data.get("given_name") or local.capitalize(),
        family_name=data.get("family_name") or "Admin",
    )


@bp.post("/reset")
def reset() -> Response:
    state = current_state()
    with state.lock:
        state.reset()
    return json_response({"ok": True})


@bp.post("/resellers")
def create_reseller() -> Response:
    data = payload()
    domain, admin_email = required(data, "domain").lower(), required(data, "admin_email")
    if not DOMAIN_RE.match(domain):
        raise ControlError(400, f"{domain!r} is not a domain name")
    if email_domain(admin_email) != domain:
        raise ControlError(400, "admin_email must be on the reseller's domain")
    state = current_state()
    with state.lock:
        if domain in state.resellers or state.customer(domain):
            raise ControlError(409, f"{domain} exists already")
        _check_account(state, admin_email)  # before anything is created
        customer = new_customer(
            state,
            domain=domain,
            reseller=None,
            tos_accepted=True,
            alternate_email=data.get("alternate_email"),
        )
        reseller = {
            "domain": domain,
            "admin_email": admin_email.lower(),
            "customer_id": customer["customerId"],
            "api_access": True,
        }
        state.resellers[domain] = reseller
        _add_account(state, customer["customerId"], admin_email, data, admin=True)
        return json_response(reseller_summary(state, reseller))


@bp.patch("/resellers/<domain>")
def update_reseller(domain: str) -> Response:
    data = payload()
    state = current_state()
    with state.lock:
        reseller = _reseller(state, domain)
        if "api_access" in data:
            reseller["api_access"] = bool(data["api_access"])
        return json_response(reseller_summary(state, reseller))


@bp.post("/resellers/<domain>/users")
def add_reseller_user(domain: str) -> Response:
    data = payload()
    email = required(data, "email")
    state = current_state()
    with state.lock:
        reseller = _reseller(state, domain)
        if email_domain(email) != reseller["domain"]:
            raise ControlError(400, "the user must be on the reseller's domain")
        user = _add_account(
            state, reseller["customer_id"], email, data, admin=bool(data.get("admin", True))
        )
        return json_response(
            {
                "email": user["primaryEmail"],
                "id": user["id"],
                "admin": user["isAdmin"],
                "reseller": reseller["domain"],
            }
        )


def _check_project_fields(data: dict) -> None:
    apis = data.get("enabled_apis")
    if apis is not None and (not isinstance(apis, list) or set(apis) - set(ALL_APIS)):
        raise ControlError(400, f"enabled_apis must be a list of {', '.join(ALL_APIS)}")
    if data.get("user_type", "external") not in USER_TYPES:
        raise ControlError(400, f"user_type must be one of {USER_TYPES}")
    if data.get("publishing_status", "production") not in PUBLISHING_STATUSES:
        raise ControlError(400, f"publishing_status must be one of {PUBLISHING_STATUSES}")


def project_view(project: dict) -> dict:
    return dict(project, enabled_apis=sorted(project["enabled_apis"]))


@bp.post("/projects")
def create_project() -> Response:
    data = payload()
    reseller_domain = required(data, "reseller")
    _check_project_fields(data)
    state = current_state()
    with state.lock:
        reseller = _reseller(state, reseller_domain)
        prefix = reseller["domain"].split(".")[0][:20]
        project_id = data.get("project_id") or f"{prefix}-{state.random_digits(6)}"
        if project_id in state.projects:
            raise ControlError(409, f"project {project_id} exists already")
        project = {
            "project_id": project_id,
            "project_number": state.random_digits(12),
            "reseller": reseller["domain"],
            "enabled_apis": list(data.get("enabled_apis", ALL_APIS)),
            "user_type": data.get("user_type", "external"),
            "publishing_status": data.get("publishing_status", "production"),
        }
        state.projects[project_id] = project
        return json_response(project_view(project))


@bp.patch("/projects/<project_id>")
def update_project(project_id: str) -> Response:
    """Change the consent screen or the enabled APIs (enabled_apis, or enable/disable lists)."""
    data = payload()
    _check_project_fields(data)
    state = current_state()
    with state.lock:
        project = state.projects.get(project_id)
        if project is None:
            raise ControlError(404, f"no project {project_id!r}")
        apis = set(data.get("enabled_apis", project["enabled_apis"]))
        for api in data.get("enable", []):
            if api not in ALL_APIS:
                raise ControlError(400, f"unknown API {api!r}")
            apis.add(api)
        apis -= set(data.get("disable", []))
        project["enabled_apis"] = sorted(apis)
        for key in ("user_type", "publishing_status"):
            if key in data:
                project[key] = data[key]
        return json_response(project_view(project))


def client_json(client: dict) -> dict:
    """The client as the Cloud console's "Download JSON" gives it."""
    return clients.client_json(client, origin())


def _redirect_uris(data: dict) -> list[str]:
    uris = data.get("redirect_uris", [])
    if not isinstance(uris, list) or not all(isinstance(u, str) and u for u in uris):
        raise ControlError(400, "redirect_uris must be a list of URLs")
    return uris


@bp.post("/clients")
def create_client() -> Response:
    data = payload()
    project_id = required(data, "project")
    uris = _redirect_uris(data)
    kind = data.get("type", "web")
    if kind not in clients.APPLICATION_TYPES:
        raise ControlError(400, f"type must be one of {', '.join(clients.APPLICATION_TYPES)}")
    state = current_state()
    with state.lock:
        project = state.projects.get(project_id)
        if project is None:
            raise ControlError(404, f"no project {project_id!r}")
        alphabet = string.ascii_lowercase + string.digits
        suffix = "".join(secrets.choice(alphabet) for _ in range(32))
        client: dict[str, Any] = {
            "kind": "web",  # an OAuth client for users, of either application type
            "application_type": kind,
            "client_id": f"{project['project_number']}-{suffix}.apps.googleusercontent.com",
            "client_secret": "GOCSPX-" + state.random_token(28),
            "project": project_id,
            "name": data.get("name") or project_id,
            "redirect_uris": uris,
        }
        state.clients[client["client_id"]] = client
        return json_response(client_json(client))


@bp.patch("/clients/<client_id>")
def update_client(client_id: str) -> Response:
    data = payload()
    state = current_state()
    with state.lock:
        client = state.clients.get(client_id)
        if client is None or client["kind"] != "web":
            raise ControlError(404, f"no OAuth client {client_id!r}")
        if "redirect_uris" in data:
            client["redirect_uris"] = _redirect_uris(data)
        if data.get("name"):
            client["name"] = data["name"]
        return json_response(client_json(client))


@bp.post("/service-accounts")
def create_service_account() -> Response:
    data = payload()
    project_id = required(data, "project")
    private_pem = crypto.new_private_key_pem()
    state = current_state()
    with state.lock:
        project = state.projects.get(project_id)
        if project is None:
            raise ControlError(404, f"no project {project_id!r}")
        name = data.get("name") or f"sandbox-{state.next_number()}"
        email = f"{name}@{project_id}.iam.gserviceaccount.com"
        if any(c.get("client_email") == email for c in state.clients.values()):
            raise ControlError(409, f"{email} exists already")
        kid = crypto.new_key_id()
        account: dict[str, Any] = {
            "kind": "service_account",
            "client_id": state.random_digits(21),
            "client_email": email,
            "project": project_id,
            "keys": {
                kid: {
                    "public_pem": crypto.public_pem(private_pem),
                    "certificate": crypto.certificate_pem(private_pem, email),
                }
            },
        }
        state.clients[account["client_id"]] = account
    base = origin()
    return json_response(
        {
            "type": "service_account",
            "project_id": project_id,
            "private_key_id": kid,
            "private_key": private_pem,
            "client_email": email,
            "client_id": account["client_id"],
            "auth_uri": base + "/o/oauth2/auth",
            "token_uri": base + "/token",
            "auth_provider_x509_cert_url": base + "/oauth2/v1/certs",
            "client_x509_cert_url": f"{base}/robot/v1/metadata/x509/{email}",
            "universe_domain": "googleapis.com",
        }
    )


@bp.post("/delegations")
def create_delegation() -> Response:
    """Domain-wide delegation, as set in the Admin console of the reseller (or any customer)."""
    data = payload()
    domain = (data.get("reseller") or data.get("domain") or "").lower()
    client_id = required(data, "client_id")
    scopes = data.get("scopes")
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        scopes = []
    scopes = tokens.normalize_scopes(" ".join(scopes))
    if not scopes:
        raise ControlError(400, "scopes must be a non-empty list of scopes")
    state = current_state()
    with state.lock:
        if state.customer(domain) is None:
            raise ControlError(404, f"no reseller or customer {domain!r}")
        if client_id not in state.clients:
            raise ControlError(404, f"no client {client_id!r}")
        entry = state.delegations.setdefault(domain, {})
        entry[client_id] = scopes
        return json_response({"domain": domain, "client_id": client_id, "scopes": entry[client_id]})


@bp.post("/tokens")
def mint_tokens() -> Response:
    """Tokens as if the user had consented with offline access, without the browser."""
    data = payload()
    client_id, email = required(data, "client_id"), required(data, "user")
    scopes = tokens.normalize_scopes(data.get("scopes") or [])
    if not scopes:
        raise ControlError(400, "scopes must be a non-empty list")
    state = current_state()
    with state.lock:
        client = state.clients.get(client_id)
        if client is None or client["kind"] != "web":
            raise ControlError(404, f"no OAuth client {client_id!r}")
        user = state.user(email)
        if user is None:
            raise ControlError(404, f"no account {email!r}")
        tokens.record_grant(state, user=user["primaryEmail"], client_id=client_id, scopes=scopes)
        refresh = tokens.issue_refresh_token(
            state, client_id=client_id, user=user["primaryEmail"], scopes=scopes
        )
        access = tokens.issue_access_token(
            state,
            client_id=client_id,
            project=client["project"],
            user=user["primaryEmail"],
            scopes=scopes,
            refresh_token=refresh["token"],
        )
        body = tokens.token_response(state, access, refresh=refresh)
        return json_response(body)


@bp.post("/revoke")
def revoke() -> Response:
    """Revoke one token ({"token"}) or an app's whole access for an account ({client_id, user})."""
    data = payload()
    state = current_state()
    with state.lock:
        if data.get("token"):
            return json_response({"revoked": int(tokens.revoke(state, data["token"]))})
        count = tokens.revoke_grant(
            state, user=required(data, "user"), client_id=required(data, "client_id")
        )
        return json_response({"revoked": count})
