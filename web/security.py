"""Security headers on every response: a CSP without inline script, no framing, no sniffing, and
no copy of a dynamic page in any cache."""

from __future__ import annotations

from flask import Flask, Response, request
from flask_talisman import Talisman

# Scripts and styles come from our own files only: no inline <script>, no on* handlers, no
# style= attributes (the templates pass data to scripts in data- attributes or JSON blocks).
# form-action is left out on purpose: browsers apply it to the redirects after a post, and
# Authenticate Instance and Sign in with Google post here to be sent on to Google.
CONTENT_SECURITY_POLICY = {
    "default-src": "'self'",
    "script-src": "'self'",
    "style-src": "'self'",
    "img-src": "'self' data:",  # Swagger UI's icons are data: URLs
    "object-src": "'none'",
    "base-uri": "'none'",
    "frame-ancestors": "'none'",
}
# Full URLs to ourselves (Flask-WTF checks the Referer of posts over HTTPS), the origin alone to
# Google and anyone else.
REFERRER_POLICY = "strict-origin-when-cross-origin"

talisman = Talisman()


def init_app(app: Flask) -> None:
    """Talisman's headers, our own page for the API docs, and no-store; after `portal.init_app`."""
    talisman.init_app(
        app,
        # TLS may end at a proxy in front of us; where it does not, redirecting is its job.
        # Strict-Transport-Security is still sent on requests that came over HTTPS.
        force_https=False,
        # The session cookie is portal.init_app's business: False here means "leave it alone".
        session_cookie_secure=False,
        session_cookie_http_only=False,
        session_cookie_samesite=app.config["SESSION_COOKIE_SAMESITE"],
        content_security_policy=CONTENT_SECURITY_POLICY,
        frame_options="DENY",
        referrer_policy=REFERRER_POLICY,
    )
    # flask-openapi3's docs pages start Swagger UI with an inline script and an inline onclick:
    # ours load the same bundled Swagger UI and start it from a static file.
    app.config["SWAGGER_HTML_STRING"] = '{% include "api_docs/swagger.html" %}'
    app.config["OPENAPI_HTML_STRING"] = '{% include "api_docs/index.html" %}'
    app.after_request(_no_store)


def _no_store(response: Response) -> Response:
    # Pages show one tenant's data, and some show a secret once (a new API key, a webhook
    # secret): neither a shared cache nor the browser's back button may keep a copy.
    # Static files keep Flask's revalidated caching.
    if (request.endpoint or "").rpartition(".")[2] != "static":
        response.headers.setdefault("Cache-Control", "no-store")
    return response
