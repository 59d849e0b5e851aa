"""Who is signed in, and what they may see: operators everything, distributor admins their own
distributor. Anything else is a 404, never a 403, so its existence is not revealed."""

from __future__ import annotations

import functools
import secrets
from collections.abc import Callable
from typing import Any

from flask import abort, current_app, g, redirect, request, session, url_for
from sqlmodel import select

from bss.accounts import audit, session_user
from bss.crypto import Vault
from bss.models import Distributor, Instance, User
from web.deps import db

SESSION_KEY = "sid"
BROWSER_KEY = "bid"
FLOWS_KEY = "oauth_flows"
MAX_FLOWS = 5


def vault() -> Vault:
    return current_app.extensions["bss.vault"]


def current_user() -> User | None:
    """The signed-in user of this request, if any."""
    if "user" not in g:
        g.user = session_user(db(), session.get(SESSION_KEY))
    return g.user


def sign_in_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Send visitors who are not signed in to the sign-in page (and back afterwards)."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if current_user() is None:
            if request.method == "GET":
                return redirect(url_for("auth.sign_in", next=request.full_path.rstrip("?")))
            abort(401)
        return view(*args, **kwargs)

    return wrapper


def require_user() -> User:
    user = current_user()
    if user is None:
        abort(401)
    return user


def browser_id() -> str:
    """A random id for this browser's session: OAuth states are bound to it."""
    if BROWSER_KEY not in session:
        session[BROWSER_KEY] = secrets.token_urlsafe(24)
    return str(session[BROWSER_KEY])


def remember_flow(state_hash: str, target_id: int, *, key: str = FLOWS_KEY) -> None:
    """Note that this browser started an authorization for `target_id` (an instance, or under
    another `key` a mail sender)."""
    flows = dict(session.get(key) or {})
    flows[state_hash] = target_id
    session[key] = dict(list(flows.items())[-MAX_FLOWS:])


def started_flows(*, key: str = FLOWS_KEY) -> dict[str, int]:
    return dict(session.get(key) or {})


def visible_distributors(user: User) -> list[Distributor]:
    query = select(Distributor).order_by(Distributor.name)
    if not user.is_operator:
        query = query.where(Distributor.id == user.distributor_id)
    return list(db().exec(query).all())


def visible_instances(user: User) -> list[tuple[Instance, Distributor]]:
    query = (
        select(Instance, Distributor)
        .join(Distributor, Distributor.id == Instance.distributor_id)  # type: ignore[arg-type]
        .order_by(Distributor.name, Instance.name)
    )
    if not user.is_operator:
        query = query.where(Instance.distributor_id == user.distributor_id)
    return [(i, d) for i, d in db().exec(query).all()]


def instance_or_404(instance_id: int) -> Instance:
    """The instance, if the signed-in user may see it; otherwise 404 (as if it did not exist)."""
    user = require_user()
    instance = db().get(Instance, instance_id)
    if instance is None or not (user.is_operator or instance.distributor_id == user.distributor_id):
        abort(404)
    return instance


def can_see_distributor(user: User, distributor_id: int | None) -> bool:
    return user.is_operator or (
        distributor_id is not None and distributor_id == user.distributor_id
    )


def audit_action(
    action: str, *, distributor_id: int | None, target: str = "", **details: Any
) -> None:
    """Put what the signed-in user just changed on the audit log (committed with the change)."""
    audit.record(
        db(),
        actor=require_user().email,
        action=action,
        target=target,
        distributor_id=distributor_id,
        source_ip=request.remote_addr,
        **details,
    )
