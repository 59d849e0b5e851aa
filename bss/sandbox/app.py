"""The sandbox's composition root: create_app() and serve()."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from typing import cast

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.serving import make_server

from bss.sandbox import batch as batch_module
from bss.sandbox import faults
from bss.sandbox.clock import rfc3339
from bss.sandbox.errors import ApiError, DropConnection, OAuthError, SandboxError
from bss.sandbox.pubsub_push import Pusher
from bss.sandbox.state import State
from bss.sandbox.tokens import GOOGLE_ISSUER

log = logging.getLogger("bss.sandbox")

#: Request-environ key marking a call made from inside a /batch request.
IN_BATCH = batch_module.IN_BATCH


def _drop(error: DropConnection) -> Response:
    """Close the client's socket without an answer (or tell the enclosing batch to)."""
    g.dropped = True
    response = error.response()
    # Log before the client can notice, so /_sandbox/calls already shows the dropped call.
    _log_call(response)
    _save(response)  # an applied change is in the state file before the client notices
    if not request.environ.get(IN_BATCH):
        # Read what is left of the request: closing a socket with unread input sends a reset,
        # and the client would see ECONNRESET or a clean end of stream depending on timing.
        request.get_data()
        sock = request.environ.get("werkzeug.socket")
        if sock is not None:
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
    return response


def _sandbox_error(error: SandboxError) -> Response:
    if isinstance(error, ApiError):
        g.error_reason = error.reason
    elif isinstance(error, OAuthError):
        g.error_reason = error.error
    return error.response()


def _log_call(response: Response) -> Response:
    call = g.pop("call", None)
    if call is not None:
        from bss.sandbox.state import current_state

        state = current_state()
        dropped = g.get("dropped", False)
        entry = dict(
            call,
            time=rfc3339(state.clock.now()),
            status=None if dropped else response.status_code,
            reason="connection dropped" if dropped else g.get("error_reason"),
            batch=bool(request.environ.get(IN_BATCH)),
        )
        with state.lock:
            state.calls.append(entry)
    return response


def _save(response: Response) -> Response:
    """Append the call's changes to the state file's journal before the answer leaves (a batch
    writes once, for all its calls); the cost is the changed records', not the state's."""
    from bss.sandbox.state import current_state

    state = current_state()
    try:
        state.commit(write=not request.environ.get(IN_BATCH))
    except OSError:
        log.exception("could not save the sandbox state to %s", state.state_file)
    return response


def create_app(*, state_file: str | None = None, issuer: str = GOOGLE_ISSUER) -> Flask:
    """A Flask app serving Google's side and the /_sandbox/ control API from one origin.

    ``issuer`` is the iss of the id tokens and of the OIDC discovery document; Google's by
    default, because clients such as GAM and google-auth's verify_oauth2_token insist on it.
    """
    from bss.sandbox import (
        batch,
        consent,
        console,
        control,
        control_oauth,
        control_ops,
        customers,
        directory,
        directory_more,
        discovery,
        gmail,
        licensing,
        notifications,
        oauth,
        overview,
        partial,
        pubsub,
        pubsub_control,
        subscriptions,
        tokeninfo,
        unrouted,
    )

    app = Flask(__name__)
    app.config["SANDBOX_ISSUER"] = issuer
    # A new app's provider is a DefaultJSONProvider; Flask types app.json as the base class.
    cast(DefaultJSONProvider, app.json).sort_keys = False
    state = State(state_file=state_file)
    state.load()
    app.extensions["sandbox"] = state
    for module in (
        oauth,
        tokeninfo,
        consent,
        control,
        control_oauth,
        control_ops,
        customers,
        subscriptions,
        directory,
        directory_more,
        licensing,
        gmail,
        batch,
        discovery,
        overview,
        notifications,
        pubsub,
        pubsub_control,
        console,
    ):
        app.register_blueprint(module.bp)
    app.register_error_handler(DropConnection, _drop)
    app.register_error_handler(SandboxError, _sandbox_error)
    unrouted.register(app)
    app.after_request(_log_call)
    app.after_request(_save)
    app.after_request(partial.render)
    # Pub/Sub push delivery; a daemon thread, stopped by serve() (or stop_pushes(app)).
    pusher = Pusher(state, issuer=issuer)
    app.extensions["sandbox_pusher"] = pusher
    pusher.start()
    return app


def stop_pushes(app: Flask) -> None:
    """Stop the app's Pub/Sub push thread (serve() does this on the way out)."""
    app.extensions["sandbox_pusher"].stop()


def serve(
    host: str, port: int, *, state_file: str | None = None, issuer: str = GOOGLE_ISSUER
) -> None:
    """Serve the sandbox until SIGINT or SIGTERM; saves the state file on the way out."""
    app = create_app(state_file=state_file, issuer=issuer)
    server = make_server(host, port, app, threaded=True)
    state: State = app.extensions["sandbox"]
    stop = threading.Event()

    def shut_down(signum: int, frame: object) -> None:
        if not stop.is_set():
            stop.set()
            faults.stopping.set()
            threading.Thread(target=server.shutdown, daemon=True).start()

    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGINT, shut_down)
        signal.signal(signal.SIGTERM, shut_down)
    log.info("Google sandbox on http://%s:%s/ (overview at /_sandbox/)", host, server.port)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        stop_pushes(app)
        state.save()
        faults.stopping.clear()
