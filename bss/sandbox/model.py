"""Records Google keeps (customers, users) and the views its APIs answer with."""

from __future__ import annotations

import copy
import hashlib
import re
from typing import Any

from bss.sandbox import catalog
from bss.sandbox.clock import rfc3339
from bss.sandbox.state import State

DOMAIN_RE = re.compile(r"^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$")
EMAIL_RE = re.compile(r"^[^@\s]+@([^@\s]+\.[^@\s]+)$")


def public(record: dict) -> dict:
    """The record without the sandbox's private ``_`` fields and without empty values."""
    return {k: v for k, v in record.items() if not k.startswith("_") and v is not None}


def etag(record: dict) -> str:
    digest = hashlib.sha256(repr(sorted(public(record).items())).encode()).hexdigest()
    return f'"{digest[:27]}"'


def email_domain(email: str) -> str:
    return email.rsplit("@", 1)[-1].lower()


def on_domain(email: str, domain: str) -> bool:
    """Whether ``email`` is on ``domain`` or one of its subdomains."""
    host = email_domain(email)
    domain = domain.lower()
    return host == domain or host.endswith("." + domain)


def new_customer(
    state: State,
    *,
    domain: str,
    reseller: str | None,
    customer_type: str = "domain",
    alternate_email: str | None = None,
    phone_number: str | None = None,
    postal_address: dict | None = None,
    tos_accepted: bool = False,
) -> dict:
    """Create and store a customer; ``reseller`` None means a direct Google customer."""
    cid = state.new_customer_id()
    address = dict(postal_address or {})
    if address:
        address["kind"] = "customers#address"
    customer = {
        "kind": "reseller#customer",
        "customerId": cid,
        "customerDomain": domain.lower(),
        "customerType": customer_type,
        "alternateEmail": alternate_email,
        "phoneNumber": phone_number,
        "postalAddress": address or None,
        "customerDomainVerified": False,
        "resourceUiUrl": f"https://admin.google.com/ac/home?dn={domain.lower()}",
        "_reseller": reseller,
        "_tos_accepted": tos_accepted,
        "_transfer_token": None,
        "_created": state.clock.now(),
    }
    state.customers[cid] = customer
    return customer


def customer_view(customer: dict, *, full: bool) -> dict:
    """Everything for the managing reseller; id, domain and type for anyone else."""
    if full:
        return public(customer)
    return {
        "kind": "reseller#customer",
        "customerId": customer["customerId"],
        "customerDomain": customer["customerDomain"],
        "customerType": customer["customerType"],
    }


def password_hash(password: str) -> str:
    return hashlib.sha256(password.encode()).hexdigest()


def new_user(
    state: State,
    *,
    email: str,
    customer_id: str,
    given_name: str = "",
    family_name: str = "",
    password: str | None = None,
    is_admin: bool = False,
    extra: dict | None = None,
) -> dict:
    """Create and store a Directory user."""
    now = state.clock.now()
    user: dict[str, Any] = {
        "kind": "admin#directory#user",
        "id": state.random_digits(21),
        "primaryEmail": email.lower(),
        "name": {
            "givenName": given_name,
            "familyName": family_name,
            "fullName": f"{given_name} {family_name}".strip(),
        },
        "isAdmin": is_admin,
        "isDelegatedAdmin": False,
        "lastLoginTime": "1970-01-01T00:00:00.000Z",
        "creationTime": rfc3339(now),
        "agreedToTerms": False,
        "suspended": False,
        "archived": False,
        "changePasswordAtNextLogin": False,
        "ipWhitelisted": False,
        "emails": [{"address": email.lower(), "primary": True}],
        "customerId": customer_id,
        "orgUnitPath": "/",
        "isMailboxSetup": True,
        "isEnrolledIn2Sv": False,
        "isEnforcedIn2Sv": False,
        "includeInGlobalAddressList": True,
        "_password": password_hash(password) if password else None,
    }
    for key in (
        "changePasswordAtNextLogin",
        "suspended",
        "orgUnitPath",
        "recoveryEmail",
        "recoveryPhone",
        "archived",
        "includeInGlobalAddressList",
    ):
        if extra and key in extra:
            user[key] = extra[key]
    state.users[user["primaryEmail"]] = user
    return user


def user_view(user: dict) -> dict:
    view = public(user)
    view["etag"] = etag(user)
    return view


# -- subscriptions -----------------------------------------------------------------------

DAY_MS = 24 * 3600 * 1000


def licensed_count(state: State, customer_id: str, sku_id: str) -> int:
    return sum(1 for lic in state.licenses_of(customer_id) if lic["skuId"] == sku_id)


def subscription_view(state: State, subscription: dict) -> dict:
    """The subscription as Google answers: licensedNumberOfSeats from the License Manager."""
    view = copy.deepcopy(public(subscription))
    view["seats"]["licensedNumberOfSeats"] = licensed_count(
        state, subscription["customerId"], subscription["skuId"]
    )
    if not view.get("suspensionReasons"):
        view.pop("suspensionReasons", None)
    return view


def age(state: State, subscription: dict) -> None:
    """Let the sandbox clock end trials: a TRIAL plan suspends, a paid plan starts billing."""
    trial = subscription.get("trialSettings") or {}
    if not trial.get("isInTrial") or int(trial["trialEndTime"]) > state.clock.now_ms():
        return
    trial["isInTrial"] = False
    if subscription["_plan"] == "TRIAL":
        suspend(subscription, "TRIAL_ENDED")


def suspend(subscription: dict, reason: str) -> None:
    subscription["status"] = "SUSPENDED"
    if reason not in subscription["suspensionReasons"]:
        subscription["suspensionReasons"].append(reason)


def set_plan(state: State, subscription: dict, plan: str, seats: dict) -> None:
    now = state.clock.now_ms()
    subscription["_plan"] = plan
    subscription["seats"] = seats
    subscription["plan"] = {
        "planName": catalog.PLAN_READ_AS.get(plan, plan),
        "isCommitmentPlan": plan in catalog.ANNUAL_PLANS,
    }
    if plan in catalog.ANNUAL_PLANS:
        subscription["plan"]["commitmentInterval"] = {
            "startTime": str(now),
            "endTime": str(now + catalog.YEAR_MS),
        }
        renewal = (subscription.get("renewalSettings") or {}).get("renewalType")
        subscription["renewalSettings"] = {
            "kind": "subscriptions#renewalSettings",
            "renewalType": renewal or catalog.DEFAULT_RENEWAL[plan],
        }
    else:
        subscription.pop("renewalSettings", None)


def new_subscription(
    state: State,
    customer: dict,
    *,
    sku_id: str,
    plan: str,
    seats: dict,
    purchase_order_id: str | None = None,
    deal_code: str | None = None,
    renewal_type: str | None = None,
    active: bool | None = None,
) -> dict:
    """Create and store a subscription for the customer's reseller."""
    product, sku_name = catalog.sku(sku_id)
    now = state.clock.now_ms()
    subscription = {
        "kind": "reseller#subscription",
        "customerId": customer["customerId"],
        "subscriptionId": state.random_digits(9),
        "skuId": sku_id,
        "skuName": sku_name,
        "customerDomain": customer["customerDomain"],
        "creationTime": str(now),
        "billingMethod": "ONLINE",
        "purchaseOrderId": purchase_order_id,
        "dealCode": deal_code,
        "status": "ACTIVE",
        "suspensionReasons": [],
        "trialSettings": {"isInTrial": plan == "TRIAL"},
        "resourceUiUrl": "https://admin.google.com/ac/billing/subscriptions?dn="
        + customer["customerDomain"],
        "_reseller": customer["_reseller"],
        "_product": product,
        "_seq": state.next_number(),
    }
    if plan == "TRIAL":
        subscription["trialSettings"]["trialEndTime"] = str(now + catalog.TRIAL_DAYS * DAY_MS)
    if renewal_type:
        subscription["renewalSettings"] = {"renewalType": renewal_type}
    set_plan(state, subscription, plan, seats)
    if not (customer["_tos_accepted"] if active is None else active):
        suspend(subscription, "PENDING_TOS_ACCEPTANCE")
    state.subscriptions[subscription["subscriptionId"]] = subscription
    return subscription
