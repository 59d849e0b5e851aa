"""Jobs: filter, search, keyset pages, and bulk retry / cancel of the filtered set."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from flask import Blueprint, current_app, flash, redirect, render_template, request, url_for
from sqlmodel import col, select
from werkzeug.datastructures import MultiDict
from werkzeug.exceptions import NotFound

from bss.accounts import ALL
from bss.errors import ValidationFailed
from bss.jobs import (
    CANCELLABLE,
    RETRYABLE,
    JobSearch,
    bulk_cancel,
    bulk_retry,
    count_jobs,
    page_of_jobs,
)
from bss.models import Distributor, Instance, Job, JobState, utcnow
from bss.operations import OPERATIONS
from web.dashboard.access import actor, scope
from web.dashboard.attempts import attempt_counts
from web.deps import db
from web.portal.access import sign_in_required

bp = Blueprint("dashboard_jobs", __name__, url_prefix="/dashboard")

# Query parameters of a job filter, as the page's form names them.
FILTER_KEYS = ("distributor", "instance", "state", "operation", "domain", "from", "to", "q")
PAGE_SIZE = 50
BULK = {
    "retry": ("Retry", RETRYABLE),
    "cancel": ("Cancel", CANCELLABLE),
}


def _invalid(field: str, problem: str) -> ValidationFailed:
    return ValidationFailed(
        f"The filter {field!r} is invalid: {problem}.",
        details=[{"field": field, "problem": problem}],
    )


def _int(args: MultiDict, key: str) -> int | None:
    raw = (args.get(key) or "").strip()
    if not raw:
        return None
    if not raw.isdigit():
        raise _invalid(key, "expected a number")
    return int(raw)


def _when(args: MultiDict, key: str) -> datetime | None:
    raw = (args.get(key) or "").strip()
    if not raw:
        return None
    try:
        parsed = datetime.fromisoformat(raw.replace("Z", "+00:00"))
    except ValueError:
        raise _invalid(key, "expected a date and time such as 2026-01-31T14:00 (UTC)") from None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def search_from(args: MultiDict, visible: int | None) -> JobSearch:
    """The filter in `args`, checked: unknown values are refused, and a distributor or instance
    the user may not see is a 404, as if it did not exist."""
    state = (args.get("state") or "").strip() or None
    if state and state not in tuple(JobState):
        raise _invalid("state", f"use one of {', '.join(JobState)}")
    operation = (args.get("operation") or "").strip() or None
    if operation and operation not in OPERATIONS:
        raise _invalid("operation", f"use one of {', '.join(sorted(OPERATIONS))}")
    distributor_id = _int(args, "distributor")
    if distributor_id is not None and (
        db().get(Distributor, distributor_id) is None
        or (visible is not ALL and distributor_id != visible)
    ):
        raise NotFound("No such distributor.")
    instance_id = _int(args, "instance")
    if instance_id is not None:
        instance = db().get(Instance, instance_id)
        if instance is None or (visible is not ALL and instance.distributor_id != visible):
            raise NotFound("No such instance.")
    return JobSearch(
        distributor_id=distributor_id,
        instance_id=instance_id,
        state=state,
        operation=operation,
        customer_domain=(args.get("domain") or "").strip().lower() or None,
        created_after=_when(args, "from"),
        created_before=_when(args, "to"),
        q=(args.get("q") or "").strip() or None,
    )


def filter_args(args: MultiDict) -> dict[str, str]:
    """The filter's parameters that are set, to carry over to links, refreshes and forms."""
    return {k: args[k].strip() for k in FILTER_KEYS if (args.get(k) or "").strip()}


def _names(rows: list[Job]) -> tuple[dict[int, str], dict[int, str]]:
    instance_ids = {j.instance_id for j in rows}
    distributor_ids = {j.distributor_id for j in rows}
    instances = db().exec(select(Instance).where(col(Instance.id).in_(instance_ids))).all()
    distributors = (
        db().exec(select(Distributor).where(col(Distributor.id).in_(distributor_ids))).all()
    )
    return (
        {i.id: i.name for i in instances if i.id is not None},
        {d.id: d.name for d in distributors if d.id is not None},
    )


def _rows_context() -> dict[str, Any]:
    visible = scope()
    search = search_from(request.args, visible)
    cursor = request.args.get("cursor") or None
    rows, following = page_of_jobs(
        db(), scope=visible, search=search, limit=PAGE_SIZE, cursor=cursor
    )
    instance_names, distributor_names = _names(rows)
    return {
        "rows": rows,
        "next_cursor": following,
        "cursor": cursor,
        "instance_names": instance_names,
        "distributor_names": distributor_names,
        # retries included, as the job's page counts them (the job's own counter restarts)
        "attempt_counts": attempt_counts(db(), [j.id for j in rows]),
        "filters": filter_args(request.args),
        "search": search,
    }


def _choices(visible: int | None) -> dict[str, Any]:
    distributors = select(Distributor).order_by(Distributor.name)
    instances = (
        select(Instance, Distributor)
        .join(Distributor, col(Distributor.id) == col(Instance.distributor_id))
        .order_by(Distributor.name, Instance.name)
    )
    if visible is not ALL:
        distributors = distributors.where(Distributor.id == visible)
        instances = instances.where(Instance.distributor_id == visible)
    return {
        "distributors": list(db().exec(distributors).all()),
        "instances": list(db().exec(instances).all()),
        "states": list(JobState),
        "operations": sorted(OPERATIONS),
    }


@bp.get("/jobs")
@sign_in_required
def jobs():
    context = _rows_context()
    return render_template("dashboard/jobs.html", **context, **_choices(scope()))


@bp.get("/jobs/rows")
@sign_in_required
def jobs_rows():
    return render_template("dashboard/_job_rows.html", **_rows_context())


def _bulk_kind() -> str:
    kind = (request.values.get("action") or "").strip()
    if kind not in BULK:
        raise _invalid("action", "use retry or cancel")
    return kind


@bp.get("/jobs/bulk")
@sign_in_required
def bulk_confirm():
    """Say how many jobs the bulk action would change, and ask to confirm."""
    actor()  # read-only roles are refused before anything is counted
    visible = scope()
    kind = _bulk_kind()
    search = search_from(request.args, visible)
    label, states = BULK[kind]
    count = count_jobs(db(), scope=visible, search=search, states=states)
    return render_template(
        "dashboard/bulk_confirm.html",
        kind=kind,
        label=label,
        states=states,
        count=count,
        as_of=utcnow().isoformat(),
        filters=filter_args(request.args),
        search=search,
    )


@bp.post("/jobs/bulk")
@sign_in_required
def bulk_run():
    who = actor()
    visible = scope()
    kind = _bulk_kind()
    search = search_from(request.form, visible)
    try:
        as_of = datetime.fromisoformat(request.form.get("as_of", ""))
    except ValueError:
        raise _invalid("as_of", "missing; confirm the action again from the jobs page") from None
    as_of = as_of if as_of.tzinfo else as_of.replace(tzinfo=UTC)
    session = db()
    if kind == "retry":
        outcome = bulk_retry(
            session,
            scope=visible,
            search=search,
            as_of=as_of,
            actor=who,
            send=current_app.extensions["bss.send"],
        )
        verb = "Retried"
    else:
        outcome = bulk_cancel(session, scope=visible, search=search, as_of=as_of, actor=who)
        verb = "Cancelled"
    message = f"{verb} {outcome.changed} job{'s' if outcome.changed != 1 else ''}."
    if outcome.skipped:
        message += f" {outcome.skipped} had changed state meanwhile and were left alone."
    flash(message, "ok")
    return redirect(url_for("dashboard_jobs.jobs", **filter_args(request.form)))
