"""The control API's operator side: faults, latency, quotas, clock, state and call log."""

from __future__ import annotations

import fnmatch

from flask import Blueprint, Response, request

from bss.sandbox import catalog, faults, notifications, renewals
from bss.sandbox.catalog import plan_name, seats
from bss.sandbox.clock import rfc3339
from bss.sandbox.control import payload, project_view, required, reseller_summary
from bss.sandbox.errors import ApiError, ControlError, json_response
from bss.sandbox.model import (
    DOMAIN_RE,
    EMAIL_RE,
    new_customer,
    new_subscription,
    new_user,
    on_domain,
    public,
    subscription_view,
    user_view,
)
from bss.sandbox.state import State, current_state

bp = Blueprint("control_ops", __name__, url_prefix="/_sandbox")


@bp.post("/faults")
def add_fault() -> Response:
    state = current_state()
    with state.lock:
        rule = faults.add_fault(state, payload())
    return json_response({"id": rule["id"], "rule": rule})


@bp.get("/faults")
def list_faults() -> Response:
    state = current_state()
    with state.lock:
        return json_response({"faults": list(state.faults)})


@bp.delete("/faults")
def clear_faults() -> Response:
    state = current_state()
    with state.lock:
        state.faults.clear()
    return json_response({"ok": True})


@bp.delete("/faults/<fault_id>")
def delete_fault(fault_id: str) -> Response:
    state = current_state()
    with state.lock:
        state.faults[:] = [r for r in state.faults if r["id"] != fault_id]
    return json_response({"ok": True})


@bp.post("/latency")
def set_latency() -> Response:
    state = current_state()
    with state.lock:
        rule = faults.add_latency(state, payload())
    return json_response(rule)


@bp.post("/quotas")
def set_quota() -> Response:
    state = current_state()
    with state.lock:
        rule = faults.set_quota(state, payload())
    return json_response(rule)


@bp.post("/clock")
def advance_clock() -> Response:
    data = payload()
    seconds = data.get("advance_seconds", 0)
    if not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "advance_seconds must be a non-negative number")
    state = current_state()
    with state.lock:
        now = state.clock.advance(seconds)
        renewals.sweep(state)  # trials and commitments end now, each with its event
    return json_response({"now": rfc3339(now), "epoch": now, "offset": state.clock.offset})


def customer_summary(customer: dict) -> dict:
    return dict(
        public(customer),
        reseller=customer["_reseller"],
        tos_accepted=customer["_tos_accepted"],
        transfer_token=(customer["_transfer_token"] or {}).get("token"),
    )


def state_view(state: State) -> dict:
    """Everything Google holds now (secrets included: this is Google's side)."""

    now = state.clock.now()
    clients = [dict(c) for c in state.clients.values() if c["kind"] == "web"]
    service_accounts = [
        {
            "client_id": c["client_id"],
            "client_email": c["client_email"],
            "project": c["project"],
            "key_ids": sorted(c["keys"]),
        }
        for c in state.clients.values()
        if c["kind"] == "service_account"
    ]
    refresh = [
        {
            "client_id": r["client_id"],
            "user": r["user"],
            "scopes": r["scopes"],
            "issued_at": rfc3339(r["issued_at"]),
            "expires_at": rfc3339(r["expires_at"]) if r["expires_at"] else None,
            "token_prefix": r["token"][:12],
        }
        for r in sorted(state.refresh_tokens.values(), key=lambda r: r["seq"])
    ]
    return {
        "now": rfc3339(now),
        "resellers": [reseller_summary(state, r) for r in state.resellers.values()],
        "projects": [project_view(p) for p in state.projects.values()],
        "clients": clients,
        "service_accounts": service_accounts,
        "delegations": [
            {"domain": d, "client_id": cid, "scopes": scopes}
            for d, entry in state.delegations.items()
            for cid, scopes in entry.items()
        ],
        "customers": [customer_summary(c) for c in state.customers.values()],
        "subscriptions": [
            dict(subscription_view(state, s), reseller=s["_reseller"])
            for s in state.subscriptions.values()
        ],
        "users": [user_view(u) for u in state.users.values()],
        "licenses": [public(lic) for lic in state.licenses.values()],
        "sent_mail": [public(m) for m in state.mail.values()],
        "tokens": {
            "access_tokens_live": sum(
                1 for r in state.access_tokens.values() if r["expires_at"] > now
            ),
            "refresh_tokens": refresh,
            "grants": [
                {"user": k.split("|", 1)[0], "client_id": k.split("|", 1)[1], "scopes": v}
                for k, v in state.grants.items()
            ],
        },
        "faults": list(state.faults),
        "latency": list(state.latency),
        "quotas": list(state.quotas.values()),
    }


@bp.get("/state")
def get_state() -> Response:
    state = current_state()
    with state.lock:
        return json_response(state_view(state))


@bp.get("/calls")
def get_calls() -> Response:
    """The call log, oldest first; ?method=<glob> filters, ?limit=N keeps the last N."""
    state = current_state()
    pattern = request.args.get("method")
    with state.lock:
        calls = [c for c in state.calls if not pattern or fnmatch.fnmatchcase(c["method"], pattern)]
    limit = request.args.get("limit", type=int)
    if limit:
        calls = calls[-limit:]
    return json_response({"calls": calls})


@bp.delete("/calls")
def clear_calls() -> Response:
    state = current_state()
    with state.lock:
        state.calls.clear()
    return json_response({"ok": True})


#: Days a customerAuthToken stays valid.
TRANSFER_TOKEN_DAYS = 30


def _customer(state: State, key: str) -> dict:
    customer = state.customer(key)
    if customer is None:
        raise ControlError(404, f"no customer {key!r}")
    return customer


CUSTOMER_TYPES = ("domain", "team")


def _subscription_order(index: int, spec: object, taken: set[str]) -> dict:
    """One ``subscriptions`` entry, checked: keyword arguments for new_subscription.

    ``planName`` or ``plan: {planName}``; ``seats`` a number (put where the plan wants it) or
    the Reseller API's seats object (its rules apply).
    """
    where = f"subscriptions[{index}]"
    if not isinstance(spec, dict):
        raise ControlError(400, f"{where} must be an object {{skuId, planName, seats}}")
    sku_id, plan_field = spec.get("skuId") or "", spec.get("plan")
    raw_plan = spec.get("planName") or (
        plan_field.get("planName") if isinstance(plan_field, dict) else plan_field
    )
    raw_seats = spec.get("seats")
    if not isinstance(sku_id, str):
        raise ControlError(400, f'{where}: skuId must be a string, e.g. "1010020027"')
    try:
        catalog.sku(sku_id)
        plan = plan_name(raw_plan, sku_id=sku_id)
        if isinstance(raw_seats, int | str) and not isinstance(raw_seats, bool):
            field = "numberOfSeats" if catalog.is_annual(plan) else "maximumNumberOfSeats"
            raw_seats = {field: raw_seats}
        block = seats(raw_seats, plan=plan)
    except ApiError as error:
        raise ControlError(400, f"{where} (skuId {sku_id!r}): {error.message}") from error
    if sku_id in taken:
        raise ControlError(400, f"{where}: a second subscription to SKU {sku_id}")
    taken.add(sku_id)
    return {"sku_id": sku_id, "plan": plan, "seats": block}


def _customer_order(state: State, data: dict) -> dict:
    """Check a whole POST /_sandbox/customers request against the state; change nothing."""
    domain = required(data, "customerDomain").lower()
    if not DOMAIN_RE.match(domain):
        raise ControlError(400, f"{domain!r} is not a domain name")
    reseller = data.get("reseller")
    if reseller is not None and (
        not isinstance(reseller, str) or reseller.lower() not in state.resellers
    ):
        raise ControlError(404, f"no reseller {reseller!r}")
    if state.customer(domain):
        raise ControlError(409, f"{domain} exists already")
    customer_type = data.get("customerType", "domain")
    if customer_type not in CUSTOMER_TYPES:
        raise ControlError(400, f"customerType must be one of {', '.join(CUSTOMER_TYPES)}")
    alternate = data.get("alternateEmail", f"contact@{domain}.invalid")
    if alternate is not None and (not isinstance(alternate, str) or not EMAIL_RE.match(alternate)):
        raise ControlError(400, f"alternateEmail {alternate!r} is not an email address")
    address = data.get("postalAddress") or {
        "contactName": "Sandbox Contact",
        "organizationName": domain,
        "postalCode": "94043",
        "countryCode": "US",
    }
    if not isinstance(address, dict):
        raise ControlError(400, "postalAddress must be an object")
    admin = data.get("admin_email") or None
    if admin is not None:
        admin = _check_customer_user(state, domain, admin)
    specs = data.get("subscriptions", [])
    if not isinstance(specs, list):
        raise ControlError(400, "subscriptions must be a list of {skuId, planName, seats}")
    taken: set[str] = set()
    return {
        "customer": {
            "domain": domain,
            "reseller": reseller.lower() if reseller else None,
            "customer_type": customer_type,
            "alternate_email": alternate,
            "postal_address": address,
            "tos_accepted": bool(data.get("tos_accepted", True)),
        },
        "admin": admin,
        "subscriptions": [_subscription_order(i, s, taken) for i, s in enumerate(specs)],
    }


@bp.post("/customers")
def create_customer() -> Response:
    """A customer made outside our reseller: another reseller's (``reseller``) or direct (null).

    Such customers have accepted Google's terms already unless ``tos_accepted`` is false. The
    whole request is checked before anything is created: a 4xx leaves nothing behind.
    """

    data = payload()
    state = current_state()
    with state.lock:
        order = _customer_order(state, data)
        customer = new_customer(state, **order["customer"])
        admins = []
        if order["admin"]:
            admins.append(_customer_user(state, customer, order["admin"], True))
        created = [
            subscription_view(state, new_subscription(state, customer, **spec))
            for spec in order["subscriptions"]
        ]
        return json_response(dict(customer_summary(customer), admins=admins, subscriptions=created))


def _check_customer_user(state: State, domain: str, email: object) -> str:
    """The email of a new user for the customer on ``domain``, checked (400, 409)."""
    if not isinstance(email, str) or not EMAIL_RE.match(email):
        raise ControlError(400, f"{email!r} is not an email address")
    if not on_domain(email, domain):
        raise ControlError(400, f"{email} is not on the customer's domain {domain}")
    if state.user(email):
        raise ControlError(409, f"{email} exists already")
    return email.lower()


def _customer_user(state: State, customer: dict, email: object, admin: bool) -> str:
    email = _check_customer_user(state, customer["customerDomain"], email)
    local = email.split("@", 1)[0]
    return new_user(
        state,
        email=email,
        customer_id=customer["customerId"],
        is_admin=admin,
        given_name=local.capitalize(),
        family_name="User",
    )["primaryEmail"]


@bp.post("/customers/<key>/users")
def add_customer_user(key: str) -> Response:
    data = payload()
    state = current_state()
    with state.lock:
        customer = _customer(state, key)
        email = _customer_user(state, customer, data.get("email"), bool(data.get("admin", False)))
        return json_response({"email": email, "customerId": customer["customerId"]})


@bp.post("/customers/<key>/accept-tos")
def accept_tos(key: str) -> Response:
    """The customer's admin accepts Google's terms: pending subscriptions become ACTIVE."""
    state = current_state()
    activated = []
    with state.lock:
        customer = _customer(state, key)
        customer["_tos_accepted"] = True
        for sub in state.subscriptions.values():
            if (
                sub["customerId"] == customer["customerId"]
                and "PENDING_TOS_ACCEPTANCE" in sub["suspensionReasons"]
            ):
                sub["suspensionReasons"].remove("PENDING_TOS_ACCEPTANCE")
                if not sub["suspensionReasons"]:
                    sub["status"] = "ACTIVE"
                    notifications.subscription_event(state, sub, "ACTIVATED")
                activated.append(sub["subscriptionId"])
    return json_response({"customerId": customer["customerId"], "activated": activated})


@bp.post("/customers/<key>/transfer-token")
def transfer_token(key: str) -> Response:
    """The customer's admin generates a transfer token for a new reseller."""
    state = current_state()
    with state.lock:
        customer = _customer(state, key)
        token = state.random_token(24)
        expires = state.clock.now() + TRANSFER_TOKEN_DAYS * 24 * 3600
        customer["_transfer_token"] = {"token": token, "expires_at": expires}
    return json_response(
        {
            "customerId": customer["customerId"],
            "customerAuthToken": token,
            "expires": rfc3339(expires),
        }
    )
