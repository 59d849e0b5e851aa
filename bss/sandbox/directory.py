"""Admin SDK Directory API: users insert / get / list / update / patch / delete / makeAdmin."""

from __future__ import annotations

from collections.abc import Set as AbstractSet

from flask import Blueprint, Response, request

from bss.sandbox import tokens, user_query
from bss.sandbox.api import api_method, body, caller, no_content, ok, page
from bss.sandbox.errors import ApiError, bad_request, conflict, forbidden, not_found
from bss.sandbox.model import (
    EMAIL_RE,
    email_domain,
    etag,
    new_user,
    password_hash,
    user_view,
)
from bss.sandbox.state import State, current_state

bp = Blueprint("directory", __name__, url_prefix="/admin/directory/v1")

NOT_AUTHORIZED = "Not Authorized to access this resource/api"


def reachable(state: State) -> AbstractSet[str]:
    """Customers the caller administers (its reseller's customers and its own domain)."""
    return state.administered_customers(caller().user)


def user_in_reach(state: State, key: str) -> dict:
    """A user the caller may manage: 403 outside its customers, 404 if there is no such user."""
    allowed = reachable(state)
    if "@" in key:
        customer = state.customer(email_domain(key))
        if customer is None or customer["customerId"] not in allowed:
            raise forbidden(NOT_AUTHORIZED)
    user = state.user(key)
    if user is None:
        raise not_found("Resource Not Found: userKey")
    if user["customerId"] not in allowed:
        raise forbidden(NOT_AUTHORIZED)
    return user


@bp.post("/users")
@api_method("directory.users.insert")
def insert_user() -> Response:
    state = current_state()
    data = body()
    email = str(data.get("primaryEmail") or "")
    if not EMAIL_RE.match(email):
        raise bad_request("Invalid Input: primary_user_email")
    name = data.get("name") or {}
    for field, label in (("givenName", "GivenName"), ("familyName", "FamilyName")):
        if not str(name.get(field) or "").strip():
            raise bad_request(f"Invalid Given/Family Name: {label}")
    password = data.get("password")
    if not isinstance(password, str) or not password:
        raise bad_request("Invalid Password", reason="required")
    if not data.get("hashFunction") and not 8 <= len(password) <= 100:
        raise bad_request("Invalid Password")
    customer = state.customer(email_domain(email))
    if customer is None:
        raise bad_request("Domain not found.")
    if customer["customerId"] not in reachable(state):
        raise forbidden(NOT_AUTHORIZED)
    if state.user(email):
        raise conflict("Entity already exists.")
    user = new_user(
        state,
        email=email,
        customer_id=customer["customerId"],
        given_name=name["givenName"].strip(),
        family_name=name["familyName"].strip(),
        password=password,
        extra=data,
    )
    return ok(user_view(user))


@bp.get("/users/<userKey>")
@api_method("directory.users.get")
def get_user(userKey: str) -> Response:  # noqa: N803 - the discovery name
    state = current_state()
    return ok(user_view(user_in_reach(state, userKey)))


@bp.get("/users")
@api_method("directory.users.list")
def list_users() -> Response:
    state = current_state()
    customer_key, domain = request.args.get("customer"), request.args.get("domain")
    if customer_key == "my_customer":
        me = state.user(caller().user)
        customer = state.customers.get(me["customerId"]) if me else None
    elif customer_key:
        customer = state.customer(customer_key)
    elif domain:
        customer = state.customer(domain)
    else:
        raise bad_request("Bad Request", reason="badRequest")
    if customer is None:
        raise bad_request("Bad Request", reason="badRequest")
    if customer["customerId"] not in reachable(state):
        raise forbidden(NOT_AUTHORIZED)
    view_type = user_query.view_type(request.args.get("viewType"))
    users = user_query.search(
        (u for u in state.users.values() if u["customerId"] == customer["customerId"]),
        query=request.args.get("query"),
        order_by=request.args.get("orderBy"),
        sort_order=request.args.get("sortOrder"),
        show_deleted=request.args.get("showDeleted"),
    )
    if domain:
        users = [u for u in users if email_domain(u["primaryEmail"]) == domain.lower()]
    chunk, next_token = page(users, default=100, maximum=500)
    answer: dict = {"kind": "admin#directory#users"}
    views = [user_view(u) for u in chunk]
    if view_type == "domain_public":
        views = [user_query.public_view(v) for v in views]
    answer["etag"] = etag({"users": [v["etag"] for v in views]})
    if views:
        answer["users"] = views
    if next_token:
        answer["nextPageToken"] = next_token
    return ok(answer)


@bp.delete("/users/<userKey>")
@api_method("directory.users.delete")
def delete_user(userKey: str) -> Response:  # noqa: N803
    state = current_state()
    user = user_in_reach(state, userKey)
    email = user["primaryEmail"]
    del state.users[email]
    for key in [k for k, v in state.licenses.items() if v["userId"] == email]:
        del state.licenses[key]
    for key in [k for k, v in state.access_tokens.items() if v["user"] == email]:
        del state.access_tokens[key]
    return no_content()


@bp.post("/users/<userKey>/makeAdmin")
@api_method("directory.users.makeAdmin")
def make_admin(userKey: str) -> Response:  # noqa: N803
    state = current_state()
    user = user_in_reach(state, userKey)
    status = body().get("status")
    if not isinstance(status, bool):
        raise ApiError(400, "invalid", "Invalid Input: status")
    user["isAdmin"] = status
    return no_content()


# -- update and patch ----------------------------------------------------------------------

#: Writable User fields the sandbox keeps, copied as given (anything else is ignored, as Google
#: ignores read-only fields such as id, isAdmin or creationTime in an update).
PLAIN_FIELDS = (
    "changePasswordAtNextLogin",
    "orgUnitPath",
    "archived",
    "includeInGlobalAddressList",
    "recoveryEmail",
    "recoveryPhone",
)
#: hashFunction values Google accepts with a pre-hashed password.
HASH_FUNCTIONS = ("MD5", "SHA-1", "crypt")


def _rename(state: State, user: dict, new_email: str) -> None:
    """Move the user to a new primary address within its customer (409 when taken)."""
    if not EMAIL_RE.match(new_email):
        raise bad_request("Invalid Input: primary_user_email")
    old = user["primaryEmail"]
    new = new_email.lower()
    if new == old:
        return
    customer = state.customer(email_domain(new))
    if customer is None or customer["customerId"] != user["customerId"]:
        # Google only renames onto a domain of the user's own account.
        raise bad_request("Invalid Input: primary_user_email")
    if state.user(new):
        raise conflict("Entity already exists.")
    del state.users[old]
    user["primaryEmail"] = new
    user["emails"] = [{"address": new, "primary": True}]
    state.users[new] = user
    for key in [k for k, v in state.licenses.items() if v["userId"] == old]:
        assignment = state.licenses.pop(key)
        assignment["userId"] = new
        assignment["selfLink"] = assignment["selfLink"].rsplit("/", 1)[0] + "/" + new
        state.licenses[key.rsplit("|", 1)[0] + "|" + new] = assignment
    # The account keeps its grants and tokens under its new name.
    for records in (state.refresh_tokens, state.access_tokens):
        for record in records.values():
            if record.get("user") == old:
                record["user"] = new
    for key in [k for k in state.grants if k.split("|", 1)[0] == old]:
        state.grants[new + "|" + key.split("|", 1)[1]] = state.grants.pop(key)


def _change_password(data: dict) -> str | None:
    """The new password's hash when the body sets one, with insert's rules."""
    if "password" not in data:
        return None
    password = data["password"]
    if not isinstance(password, str) or not password:
        raise bad_request("Invalid Password", reason="required")
    hash_function = data.get("hashFunction")
    if hash_function is not None and hash_function not in HASH_FUNCTIONS:
        raise bad_request("Invalid Input: hash_function")
    if not hash_function and not 8 <= len(password) <= 100:
        raise bad_request("Invalid Password")
    return password_hash(password)


def _change(state: State, user: dict, data: dict, *, clear_nulls: bool) -> dict:
    """Apply an update (``clear_nulls``: a null clears the field) or a patch to the user."""
    new_password = _change_password(data)
    name = data.get("name")
    if isinstance(name, dict):
        for field, label in (("givenName", "GivenName"), ("familyName", "FamilyName")):
            if field in name and not str(name[field] or "").strip():
                raise bad_request(f"Invalid Given/Family Name: {label}")
    if "primaryEmail" in data and data["primaryEmail"] is not None:
        _rename(state, user, str(data["primaryEmail"]))
    if isinstance(name, dict):
        merged = dict(user["name"])
        for field in ("givenName", "familyName"):
            if field in name:
                merged[field] = str(name[field]).strip()
        merged["fullName"] = f"{merged['givenName']} {merged['familyName']}".strip()
        user["name"] = merged
    if "suspended" in data and (data["suspended"] is not None or clear_nulls):
        suspended = bool(data["suspended"])
        user["suspended"] = suspended
        # suspensionReason is read-only: Google sets ADMIN when an administrator suspends.
        user["suspensionReason"] = "ADMIN" if suspended else None
    for field in PLAIN_FIELDS:
        if field not in data:
            continue
        if data[field] is None:
            if clear_nulls and field in ("recoveryEmail", "recoveryPhone"):
                user[field] = None
            continue
        user[field] = data[field]
    if new_password is not None:
        user["_password"] = new_password
        tokens.password_changed(state, user["primaryEmail"])
    return user


@bp.put("/users/<userKey>")
@api_method("directory.users.update")
def update_user(userKey: str) -> Response:  # noqa: N803
    state = current_state()
    user = user_in_reach(state, userKey)
    return ok(user_view(_change(state, user, body(), clear_nulls=True)))


@bp.patch("/users/<userKey>")
@api_method("directory.users.patch")
def patch_user(userKey: str) -> Response:  # noqa: N803
    state = current_state()
    user = user_in_reach(state, userKey)
    return ok(user_view(_change(state, user, body(), clear_nulls=False)))
