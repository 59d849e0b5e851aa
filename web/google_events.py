"""POST /google/events: where Google's Pub/Sub pushes the Reseller API's notifications, for every
instance of the platform (the subscription named in the envelope says whose it is).

No session, no CSRF: the caller is Pub/Sub, authenticated by the OIDC token it signs. A push is
answered fast: 204 once the event is stored (or was stored already: a second delivery of the
same message), and a worker processes it after the commit. A refused push stores nothing: 401
without a bearer token, 403 when the token is not Google's for our endpoint, 400 when the body
is not a Pub/Sub push. Any non-2xx makes Pub/Sub deliver again later.
"""

from __future__ import annotations

import logging

from flask import Blueprint, current_app, request

from bss import events
from web.deps import db, settings
from web.errors import error_json

log = logging.getLogger(__name__)

bp = Blueprint("google_events", __name__)

PUSH_PATH = "/google/events"


def _refused(status: int, code: str, message: str):
    # One line, without the token or the body: the caller may be anyone.
    log.warning("refused push from %s: %s (%s)", request.remote_addr, code, message)
    response, status = error_json(status, code, message)
    if status == 401:
        response.headers["WWW-Authenticate"] = 'Bearer realm="google-events"'
    return response, status


@bp.post(PUSH_PATH)
def receive():
    """Store one pushed notification once; a worker processes it."""
    authorization = request.headers.get("Authorization", "")
    scheme, _, token = authorization.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return _refused(
            401, "unauthorized", "Pushes must carry Pub/Sub's OIDC token as a Bearer token."
        )
    envelope = request.get_json(silent=True)
    session = db()
    try:
        event, created = events.receive_push(
            session,
            settings(),
            authorization=authorization,
            envelope=envelope,
        )
    except events.PushRefused as exc:
        session.rollback()
        return _refused(exc.status, "push_refused", exc.message)
    session.commit()
    if created:
        try:
            current_app.extensions["bss.send_event"](event.id)
        except Exception:  # noqa: BLE001 - stored: the scheduler re-sends events left received
            log.exception("could not queue Google event %s; the scheduler will", event.id)
    return "", 204
