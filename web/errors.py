"""The web edge's translation of errors: JSON under /api, a page elsewhere."""

from __future__ import annotations

from typing import Any

from flask import Flask, jsonify, render_template, request
from pydantic import ValidationError
from sqlalchemy.exc import OperationalError
from werkzeug.exceptions import HTTPException

from bss.errors import BssError, problems


def error_json(status: int, code: str, message: str, details: Any = None):
    body = {"error": {"code": code, "message": message, "details": details}}
    return jsonify(body), status


def validation_error_response(exc: ValidationError):
    """flask-openapi3's request validation, in our error shape."""
    details = problems(exc.errors())
    # flask-openapi3 aborts with what this returns, so it must be one Response (not a tuple).
    response, status = error_json(422, "validation_failed", "The request is invalid.", details)
    response.status_code = status
    return response


def _wants_json() -> bool:
    return request.path.startswith("/api/")


def register(app: Flask) -> None:
    @app.errorhandler(BssError)
    def _bss_error(exc: BssError):
        if _wants_json():
            details = exc.details
            if exc.hint:
                details = {"hint": exc.hint, "items": details} if details else {"hint": exc.hint}
            return error_json(exc.http_status, exc.code, exc.message, details)
        return render_template("error.html", status=exc.http_status, message=exc.message), (
            exc.http_status
        )

    @app.errorhandler(HTTPException)
    def _http_error(exc: HTTPException):
        # Our body replaces werkzeug's, its headers stay: Allow on a 405 above all.
        headers = [(k, v) for k, v in exc.get_headers() if k.lower() != "content-type"]
        if _wants_json():
            body, status = error_json(
                exc.code or 500,
                (exc.name or "error").lower().replace(" ", "_"),
                exc.description or exc.name,
            )
            return body, status, headers
        page = render_template("error.html", status=exc.code, message=exc.description)
        return page, exc.code, headers

    @app.errorhandler(OperationalError)
    def _store_unavailable(exc: OperationalError):
        # The database did not answer (down, failing over, locked): nothing was recorded.
        app.logger.error("database unavailable: %s", exc.orig)
        message = "Our job store is unavailable for a moment; nothing was recorded. Try again."
        headers = {"Retry-After": "5"}
        if _wants_json():
            response, status = error_json(503, "unavailable", message)
            return response, status, headers
        return render_template("error.html", status=503, message=message), 503, headers

    @app.errorhandler(Exception)
    def _unexpected(exc: Exception):
        app.logger.exception("unhandled error")
        message = "Something went wrong on our side; it has been logged."
        if _wants_json():
            return error_json(500, "internal_error", message)
        return render_template("error.html", status=500, message=message), 500
