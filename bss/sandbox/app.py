"""The sandbox's composition root: create_app() and serve()."""

from __future__ import annotations

import contextlib
import logging
import signal
import socket
import threading
from typing import TYPE_CHECKING, cast

from flask import Flask, Response, g, request
from flask.json.provider import DefaultJSONProvider
from werkzeug.serving import make_server

from bss.sandbox import batch as batch_module
from bss.sandbox import faults
from bss.sandbox.clock import rfc3339
from bss.sandbox.errors import ApiError, DropConnection, OAuthError, SandboxError
from bss.sandbox.keepalive import KeepAliveHandler
from bss.sandbox.pubsub_push import PUSH_THREADS, Pusher
from bss.sandbox.state import State
from bss.sandbox.tokens import GOOGLE_ISSUER

if TYPE_CHECKING:
    from bss.sandbox.smtp_server import SmtpServer

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


def create_app(
    *,
    state_file: str | None = None,
    issuer: str = GOOGLE_ISSUER,
    push_threads: int = PUSH_THREADS,
) -> Flask:
    """A Flask app serving Google's side and the /_sandbox/ control API from one origin.

    ``issuer`` is the iss of the id tokens and of the OIDC discovery document; Google's by
    default, because clients such as GAM and google-auth's verify_oauth2_token insist on it.
    ``push_threads``: Pub/Sub pushes outstanding at once.
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
        mailbox,
        notifications,
        oauth,
        overview,
        partial,
        pubsub,
        pubsub_control,
        smtp_server,
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
        mailbox,
        smtp_server,
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
    # Pub/Sub push delivery; daemon threads, stopped by serve() (or stop_pushes(app)).
    pusher = Pusher(state, issuer=issuer, threads=push_threads)
    app.extensions["sandbox_pusher"] = pusher
    pusher.start()
    return app


def stop_pushes(app: Flask) -> None:
    """Stop the app's Pub/Sub push threads (serve() does this on the way out)."""
    app.extensions["sandbox_pusher"].stop()


def _start_smtp(
    app: Flask, host: str, http_port: int, smtp_port: int | None, cert_file: str | None
) -> SmtpServer | None:
    """Gmail's SMTP server beside the HTTP one. ``smtp_port`` None: the HTTP port + 1, skipped
    with a warning when that port is taken; 0: off; a port that cannot be had stops the start."""
    from bss.sandbox import smtp_server, smtp_tls

    port = http_port + 1 if smtp_port is None else smtp_port
    if not port or port > 65535:
        return None
    try:
        smtp = smtp_server.start(app, host=host, port=port)
    except OSError as error:
        if smtp_port is not None:
            raise SystemExit(f"Cannot serve SMTP on {host}:{port}: {error}") from error
        log.warning(
            "No SMTP: %s:%s is taken (%s); choose a port with --smtp-port", host, port, error
        )
        return None
    where = f"http://{host}:{http_port}/_sandbox/smtp/certificate"
    if cert_file:
        try:
            smtp_tls.write_certificate(cert_file, smtp.identity.certificate_pem)
        except OSError as error:
            smtp.stop()
            raise SystemExit(
                f"Cannot write the SMTP certificate to {cert_file}: {error}"
            ) from error
        where = f"{cert_file} and {where}"
    log.info("Gmail SMTP on %s:%s (STARTTLS, AUTH XOAUTH2; certificate in %s)", host, port, where)
    return smtp


def serve(
    host: str,
    port: int,
    *,
    state_file: str | None = None,
    issuer: str = GOOGLE_ISSUER,
    smtp_port: int | None = None,
    smtp_cert: str | None = None,
    push_threads: int = PUSH_THREADS,
) -> None:
    """Serve the sandbox until SIGINT or SIGTERM; saves the state file on the way out.

    Gmail's SMTP server listens on ``smtp_port`` (None: ``port`` + 1 when free; 0: none), its
    certificate written to ``smtp_cert`` when given; ``push_threads`` Pub/Sub pushes at once.
    """
    app = create_app(state_file=state_file, issuer=issuer, push_threads=push_threads)
    # SMTP first: by the time HTTP answers (what starters wait for), SMTP answers too.
    smtp = _start_smtp(app, host, port, smtp_port, smtp_cert) if port else None
    try:
        server = make_server(host, port, app, threaded=True, request_handler=KeepAliveHandler)
    except BaseException:
        if smtp is not None:
            smtp.stop()
        raise
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
    try:
        if not port:  # an HTTP port the system chose: SMTP's default follows it
            smtp = _start_smtp(app, host, server.port, smtp_port, smtp_cert)
        log.info("Google sandbox on http://%s:%s/ (overview at /_sandbox/)", host, server.port)
        server.serve_forever()
    finally:
        server.server_close()
        if smtp is not None:
            smtp.stop()
        stop_pushes(app)
        state.save()
        faults.stopping.clear()
