"""The HTML overview page at /_sandbox/: what "Google" holds and the latest calls."""

from __future__ import annotations

from flask import Blueprint, Response, make_response, render_template, request

from bss.sandbox.control_ops import state_view
from bss.sandbox.pubsub_control import pubsub_view
from bss.sandbox.state import current_state

bp = Blueprint("overview", __name__, url_prefix="/_sandbox")

#: How many of the latest calls the page lists.
RECENT_CALLS = 50


@bp.get("/")
def overview() -> Response:
    state = current_state()
    with state.lock:
        view = state_view(state)
        pubsub = pubsub_view(state)
        calls = list(state.calls)[-RECENT_CALLS:][::-1]
    customers = {c["customerId"]: c for c in view["customers"]}
    refresh = request.args.get("refresh", type=int)
    html = render_template(
        "overview.html",
        view=view,
        pubsub=pubsub,
        customers=customers,
        calls=calls,
        refresh=refresh if refresh and refresh > 0 else None,
        origin=request.host_url.rstrip("/"),
    )
    return make_response(html, 200)
