"""Billing API v1, drift: the differences between what billing ordered and what Google holds,
found by Google's notifications and the reconciliation, and resolving them: accept Google's
value as the new order, or restore billing's value at Google with a job."""

from __future__ import annotations

from typing import Any

from flask import current_app, g, url_for
from flask_openapi3 import Tag
from flask_openapi3.models import Example
from sqlmodel import col, select

from bss import events, jobs
from bss.errors import NotFound
from bss.events import (
    DriftList,
    DriftListQuery,
    DriftPath,
    DriftPublic,
    DriftResolution,
    DriftResolve,
)
from bss.jobs import ErrorResponse
from bss.models import Drift, Instance, Job
from web.api.blueprint import bp
from web.deps import db, settings

TAG = Tag(name="drift", description="Where Google differs from what billing ordered")


def _names(rows: list[Any]) -> dict[int, str]:
    ids = {r.instance_id for r in rows}
    if not ids:
        return {}
    found = db().exec(select(Instance).where(col(Instance.id).in_(ids))).all()
    return {i.id: i.name for i in found if i.id is not None}


def _public(drift: Any, names: dict[int, str]) -> dict[str, Any]:
    if isinstance(drift, Drift):
        drift = DriftPublic.of(drift, instance_name=names.get(drift.instance_id, ""))
    return drift.model_dump(mode="json") if hasattr(drift, "model_dump") else dict(drift)


def _instance_id(name: str | None) -> int | None:
    if not name:
        return None
    instance = (
        db()
        .exec(
            select(Instance).where(
                Instance.distributor_id == g.distributor.id, Instance.name == name
            )
        )
        .first()
    )
    if instance is None:
        raise NotFound(
            f"No instance named {name!r}.",
            details=[{"field": "instance", "problem": "no such instance"}],
        )
    return instance.id


@bp.get("/drift", tags=[TAG], responses={200: DriftList})
def list_drift(query: DriftListQuery):
    """Differences between what you ordered and what Google holds, newest first: open ones by
    default (`state=resolved` for the others), by instance, customer (domain or id) or field;
    follow `next_cursor` for the next page."""
    rows, following = events.list_drift(
        db(),
        distributor_id=g.distributor.id,
        state=query.state,
        instance_id=_instance_id(query.instance),
        customer=query.customer.strip().lower() if query.customer else None,
        field=query.field,
        limit=query.limit,
        cursor=query.cursor,
    )
    rows = list(rows)
    names = _names([r for r in rows if isinstance(r, Drift)])
    return {"drift": [_public(r, names) for r in rows], "next_cursor": following}


def _drift_or_404(drift_id: str) -> Drift:
    drift = db().get(Drift, drift_id)
    if drift is None or drift.distributor_id != g.distributor.id:
        raise NotFound(f"No drift {drift_id!r}.")
    return drift


@bp.get("/drift/<drift_id>", tags=[TAG], responses={200: DriftPublic})
def get_drift(path: DriftPath):
    """One difference: both values, the job that set yours, and how it was resolved."""
    drift = _drift_or_404(path.drift_id)
    return _public(drift, _names([drift]))


@bp.post(
    "/drift/<drift_id>/resolve",
    tags=[TAG],
    responses={200: DriftResolution, 202: DriftResolution, 409: ErrorResponse},
)
def resolve_drift(path: DriftPath, body: DriftResolve):
    """Resolve an open difference.

    `accept`: Google's value becomes what you ordered; nothing changes at Google (200).
    `restore`: a job puts your value back at Google (202, with the job to follow; its outcome
    comes as your usual job webhook). A difference that cannot be restored (the customer
    transferred away, the subscription deleted at Google) is refused with 409, as is one that is
    resolved already; nothing changes.
    """
    _drift_or_404(path.drift_id)
    session = db()
    drift, job_id = events.resolve_drift(
        session,
        settings(),
        path.drift_id,
        distributor_id=g.distributor.id,
        action=body.action,
        actor=f"billing API ({g.distributor.name})",
    )
    session.commit()
    answer: dict[str, Any] = {"drift": _public(drift, _names([drift])), "job_id": job_id}
    if job_id:
        job = session.get(Job, job_id)
        if job is not None:
            jobs.dispatch(session, job, current_app.extensions["bss.send"], settings=settings())
        answer["job_url"] = url_for("api.get_job", job_id=job_id, _external=True)
    return answer, 202 if job_id else 200


def document_examples(app: Any) -> None:
    """Named examples of the resolve request body (Swagger's "Try it out")."""
    operation = app.paths["/api/v1/drift/{drift_id}/resolve"].post
    body = operation.requestBody.content["application/json"]
    body.examples = {name: Example(**ex) for name, ex in events.RESOLVE_EXAMPLES.items()}
