"""Running the SMTP server: its thread, its certificate, and /_sandbox/smtp describing it."""

from __future__ import annotations

from aiosmtpd.controller import Controller
from flask import Blueprint, Flask, Response, current_app

from bss.sandbox.errors import ControlError, json_response
from bss.sandbox.smtp import MAX_MESSAGE_BYTES, Gmail, GmailSMTP, refuse_password
from bss.sandbox.smtp_tls import TlsIdentity, self_signed
from bss.sandbox.state import State

bp = Blueprint("smtp_server", __name__, url_prefix="/_sandbox")


class _Controller(Controller):
    """aiosmtpd's threaded controller, making a GmailSMTP for each connection."""

    def factory(self) -> GmailSMTP:
        return GmailSMTP(self.handler, **self.SMTP_kwargs)


class SmtpServer:
    """The sandbox's SMTP server: its own thread and event loop, the State shared with HTTP."""

    def __init__(self, state: State, *, host: str, port: int) -> None:
        self.host, self.port = host, port
        self.identity: TlsIdentity = self_signed(host)
        self._controller = _Controller(
            Gmail(state),
            hostname=host,
            port=port,
            ready_timeout=10,
            server_hostname=host,
            tls_context=self.identity.server_context(),
            require_starttls=True,
            auth_required=True,
            auth_require_tls=True,
            authenticator=refuse_password,
            data_size_limit=MAX_MESSAGE_BYTES,
        )

    def start(self) -> None:
        """Listen; an OSError when the port is taken."""
        self._controller.start()

    def stop(self) -> None:
        self._controller.stop()


def start(app: Flask, *, host: str, port: int) -> SmtpServer:
    """Start the SMTP server for ``app``'s State; /_sandbox/smtp then describes it."""
    server = SmtpServer(app.extensions["sandbox"], host=host, port=port)
    server.start()
    app.extensions["sandbox_smtp"] = server
    return server


def _running() -> SmtpServer:
    server = current_app.extensions.get("sandbox_smtp")
    if server is None:
        raise ControlError(404, "the SMTP server is off: start the sandbox with --smtp-port N")
    return server


@bp.get("/smtp")
def smtp_info() -> Response:
    """Where the SMTP server listens, for tests and demos that start the sandbox."""
    server = _running()
    host = "127.0.0.1" if server.host in ("0.0.0.0", "::", "") else server.host  # noqa: S104
    return json_response(
        {
            "host": host,
            "port": server.port,
            "starttls": True,
            "auth": ["XOAUTH2"],
            "certificate": "/_sandbox/smtp/certificate",
        }
    )


@bp.get("/smtp/certificate")
def smtp_certificate() -> Response:
    """The self-signed certificate STARTTLS presents (PEM), for clients to trust."""
    return Response(_running().identity.certificate_pem, mimetype="text/plain")
