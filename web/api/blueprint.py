"""The billing API's blueprint: /api/v1, authenticated by the distributor's API key, with each
operation's params model in the OpenAPI document."""

from __future__ import annotations

from typing import Any

from flask import g
from flask.blueprints import BlueprintSetupState
from flask_openapi3 import APIBlueprint, Tag
from flask_openapi3.models import Example, Schema

from bss.jobs import ErrorResponse, job_create_schemas, operation_schemas
from bss.operations import request_examples
from web.deps import api_distributor

bp = APIBlueprint(
    "api",
    __name__,
    url_prefix="/api/v1",
    abp_tags=[Tag(name="jobs", description="Provisioning jobs")],
    abp_security=[{"bearer": []}],
    abp_responses={401: ErrorResponse, 404: ErrorResponse, 422: ErrorResponse},
)


@bp.record_once
def _document_operations(state: BlueprintSetupState) -> None:
    # Each operation's params model goes into the OpenAPI document's components, with one
    # JobCreate shape per operation referring to it.
    components = getattr(state.app, "components_schemas", None)
    if components is not None:
        schemas = {**operation_schemas(), **job_create_schemas()}
        for name, schema in schemas.items():
            components[name] = Schema(**schema)


def document_examples(app: Any) -> None:
    """A runnable named example per operation on POST /jobs (Swagger's "Try it out")."""
    body = app.paths["/api/v1/jobs"].post.requestBody.content["application/json"]
    body.examples = {name: Example(**ex) for name, ex in request_examples().items()}


@bp.before_request
def _authenticate() -> None:
    # Before request validation: an unauthenticated caller learns nothing about the body.
    g.distributor = api_distributor()
