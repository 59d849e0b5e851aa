"""The control API's account-security side: what a user does that kills an app's tokens."""

from __future__ import annotations

from flask import Blueprint, Response

from bss.sandbox import tokens
from bss.sandbox.control import payload, required
from bss.sandbox.errors import ControlError, json_response
from bss.sandbox.model import password_hash
from bss.sandbox.state import current_state

bp = Blueprint("control_oauth", __name__, url_prefix="/_sandbox")


@bp.post("/users/<email>/password")
def change_password(email: str) -> Response:
    """The user changes their password: refresh tokens holding Gmail scopes die."""
    password = required(payload(), "password")
    if not 8 <= len(password) <= 100:
        raise ControlError(400, "password must be 8 to 100 characters")
    state = current_state()
    with state.lock:
        user = state.user(email)
        if user is None:
            raise ControlError(404, f"no account {email!r}")
        user["_password"] = password_hash(password)
        revoked = tokens.password_changed(state, user["primaryEmail"])
        return json_response({"user": user["primaryEmail"], "revoked": revoked})
