"""The Flask app: billing API, pages, health."""

from __future__ import annotations

import logging
from typing import Any

from flask import g, redirect, url_for
from flask_openapi3 import Info, OpenAPI
from werkzeug.middleware.proxy_fix import ProxyFix

from bss.broker import broker_kind, make_broker, send_google_event, send_job, send_mail
from bss.crypto import vault_from_settings
from bss.settings import Settings, get_settings
from web import api, bodies, dashboard, errors, google_events, layout, limits, ops, portal, security


def create_app(settings: Settings | None = None, *, test_config: dict[str, Any] | None = None):
    """Build the web app for `settings` (default: from the environment)."""
    settings = settings or get_settings()
    app = OpenAPI(
        __name__,
        info=Info(title="Workspace provisioning API", version="1"),
        security_schemes={"bearer": {"type": "http", "scheme": "bearer"}},
        doc_prefix="/api/v1",
        doc_url="/openapi.json",
        validation_error_status=422,
        validation_error_callback=errors.validation_error_response,
    )
    app.config.update(BSS_SETTINGS=settings)
    if test_config:
        app.config.update(test_config)
    app.extensions["bss.vault"] = vault_from_settings(settings)
    broker_kind(settings)  # a BSS_BROKER_URL of no known broker stops the app now, not at a job
    _broker: list[Any] = []

    def broker() -> Any:
        if not _broker:  # built on first use: nothing connects while the app starts
            _broker.append(app.config.get("BSS_BROKER") or make_broker(settings))
        return _broker[0]

    def send(job_id: str) -> None:
        send_job(broker(), job_id)

    app.extensions["bss.send"] = send
    # A stored Google notification, to the workers of the events queue
    app.extensions["bss.send_event"] = lambda event_id: send_google_event(broker(), event_id)
    # A queued e-mail (a test message), to the workers of the mail queue
    app.extensions["bss.send_mail"] = lambda message_id: send_mail(broker(), message_id)
    app.register_api(api.bp)
    api.document_examples(app)
    app.register_blueprint(ops.bp)
    # Google's pushes are authenticated by their OIDC token, not by a cookie: no CSRF token
    app.register_blueprint(google_events.bp)
    portal.init_app(app, csrf_exempt=[api.bp, google_events.bp])
    security.init_app(app)
    limits.init_app(app)
    bodies.init_app(app)
    if settings.trusted_proxies:
        # Behind a load balancer: the client's address (audit log, rate limits) and the scheme
        # come from the proxies' X-Forwarded-* headers, trusting only that many hops.
        n = settings.trusted_proxies
        app.wsgi_app = ProxyFix(app.wsgi_app, x_for=n, x_proto=n, x_host=n)  # type: ignore[method-assign]
    dashboard.init_app(app)
    layout.init_app(app)
    errors.register(app)

    @app.get("/", doc_ui=False)
    def index():
        return redirect(url_for("instances.list_instances"))

    @app.teardown_appcontext
    def _close_session(_exc: BaseException | None) -> None:
        session = g.pop("db", None)
        if session is not None:
            session.close()

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    return app
