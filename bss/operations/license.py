"""Licenses: assign or revoke a SKU for many users in one job, sent as Google batch requests."""

from __future__ import annotations

import time
from typing import Any

from pydantic import EmailStr, Field, field_validator

from bss.errors import GoogleError, PermanentGoogleError, TransientGoogleError
from bss.operations.base import Operation, Params, StepContext
from bss.operations.common import (
    ANNUAL_PLANS,
    CustomerRef,
    SkuId,
    find_customer,
    plan_of,
    product_of,
    refuse,
    require_subscription,
    sku_name,
)

# Rounds of re-sending the calls of a batch that failed transiently, before the job retries.
BATCH_ROUNDS = 3
# The one step of a license job (it runs in chunks, see _in_chunks).
STEP = "licenses"


class LicenseChange(Params):
    customer: CustomerRef
    sku_id: SkuId
    # Each once (compared without case): the document says so, as far as JSON Schema can.
    users: list[EmailStr] = Field(
        min_length=1,
        max_length=1000,
        description="Users' emails, each once (compared without case)",
        json_schema_extra={"uniqueItems": True},
    )

    @field_validator("users", mode="after")
    @classmethod
    def _unique(cls, v: list[str]) -> list[str]:
        lowered = [u.lower() for u in v]
        if len(set(lowered)) != len(lowered):
            raise ValueError("each user may appear once")
        return lowered


def licensed_users(ctx: StepContext, domain: str, sku_id: str) -> set[str]:
    """Who holds a license for the SKU at the customer now (every page)."""
    product = product_of(sku_id)
    users: set[str] = set()
    token: str | None = None
    while True:

        def list_page(svc: Any, t: str | None = token) -> Any:
            return svc.licenseAssignments().listForProductAndSku(
                productId=product, skuId=sku_id, customerId=domain, maxResults=1000, pageToken=t
            )

        page = ctx.gateway.call("licensing.licenseAssignments.listForProductAndSku", list_page)
        users |= {str(i.get("userId", "")).lower() for i in page.get("items") or []}
        token = page.get("nextPageToken")
        if not token:
            return users


def _batched(
    ctx: StepContext, method: str, users: list[str], request_for: Any, done_status: int
) -> tuple[list[str], dict[str, GoogleError]]:
    """Send one call per user in batches; re-send transient failures a few rounds.

    `done_status` is the error status that means "already so" (404 on delete). Other refusals
    are returned; the caller reads Google's state again to tell "already so" from a real one.
    """
    done: list[str] = []
    failed: dict[str, GoogleError] = {}
    pending = list(users)
    for round_ in range(BATCH_ROUNDS):
        outcomes = ctx.gateway.batch(method, {u: request_for(u) for u in pending})
        pending = []
        for user, outcome in outcomes.items():
            err = outcome.error
            if err is None or err.status == done_status:
                done.append(user)
            elif isinstance(err, TransientGoogleError):
                pending.append(user)
            else:
                failed[user] = err
        if not pending:
            break
        time.sleep(min(2.0, 0.5 * 2**round_))
    if pending:
        raise TransientGoogleError(
            f"{len(pending)} license call(s) still failing after {BATCH_ROUNDS} rounds.",
            method=method,
        )
    return done, failed


def _refuse_failures(failed: dict[str, GoogleError], verb: str) -> None:
    if not failed:
        return
    err = PermanentGoogleError(
        f"Could not {verb} {len(failed)} license(s): "
        + "; ".join(f"{u}: {e.reason or e.status} ({e.message})" for u, e in failed.items()),
        status=next(iter(failed.values())).status,
        reason=next(iter(failed.values())).reason,
        method=next(iter(failed.values())).method,
        hint="Check that each user exists on the customer's domain; the other users were done "
        "and a new job for the failed ones will not touch them again.",
    )
    err.details = [{"user": u, "reason": e.reason, "message": e.message} for u, e in failed.items()]
    raise err


def _in_chunks(
    ctx: StepContext,
    todo: list[str],
    method: str,
    request_for: Any,
    done_status: int,
) -> tuple[list[str], dict[str, GoogleError]]:
    """Send the calls for `todo` chunk by chunk, a chunk being what the instance's quota of
    the License Manager allows in about a second; save the progress after each chunk.

    A job for 1,000 users at 1 call/s runs for about 17 minutes: the job engine may pause it
    between chunks (its thread goes to other jobs) and a worker may die; either way it resumes
    from the last chunk saved, and Google's "already so" answers make a resent call harmless.
    """
    state = ctx.partial(STEP) or {}
    done: list[str] = list(state.get("done") or [])
    failed = {u: _error_of(e) for u, e in (state.get("failed") or {}).items()}
    seen = set(done) | set(failed)
    pending = [u for u in todo if u not in seen]
    size = ctx.gateway.calls_per_chunk("licensing")
    for start in range(0, len(pending), size):
        ok, refused = _batched(ctx, method, pending[start : start + size], request_for, done_status)
        done += ok
        failed.update(refused)
        saved = {**state, "done": done, "failed": {u: _saved(e) for u, e in failed.items()}}
        ctx.save_progress(STEP, saved, len(done) + len(failed), len(todo), "users")
    return done, failed


def _saved(err: GoogleError) -> dict[str, Any]:
    return {
        "message": err.message,
        "status": err.status,
        "reason": err.reason,
        "method": err.method,
    }


def _error_of(saved: dict[str, Any]) -> GoogleError:
    return PermanentGoogleError(
        saved["message"], status=saved["status"], reason=saved["reason"], method=saved["method"]
    )


def _plan(ctx: StepContext, plan: Any) -> dict[str, Any]:
    """What a license step found before its first chunk (kept across pauses): read once."""
    state = ctx.partial(STEP)
    if state and "plan" in state:
        return dict(state["plan"])
    found = dict(plan())
    ctx.save_progress(STEP, {"plan": found}, 0, len(found["todo"]), "users")
    return found


def _assign(ctx: StepContext) -> dict[str, Any]:
    p: LicenseChange = ctx.params

    def plan() -> dict[str, Any]:
        customer = find_customer(ctx, p.customer)
        cid, domain = customer["customerId"], customer["customerDomain"]
        sub = require_subscription(ctx, cid, p.customer, p.sku_id)
        have = licensed_users(ctx, domain, p.sku_id)
        missing = [u for u in p.users if u not in have]
        seats = sub.get("seats") or {}
        annual = plan_of(sub) in ANNUAL_PLANS
        limit = seats.get("numberOfSeats" if annual else "maximumNumberOfSeats")
        if limit is not None and len(have) + len(missing) > int(limit):
            raise refuse(
                f"{sku_name(p.sku_id)} has {limit} seats and {len(have)} are taken; "
                f"{len(missing)} more do not fit.",
                "Add seats first (subscription.change_seats), then assign the licenses.",
                reason="notEnoughSeats",
            )
        return {"domain": domain, "todo": missing, "already": sorted(have & set(p.users))}

    found = _plan(ctx, plan)
    product = product_of(p.sku_id)
    done, failed = _in_chunks(
        ctx,
        found["todo"],
        "licensing.licenseAssignments.insert",
        lambda u: (
            lambda svc: svc.licenseAssignments().insert(
                productId=product, skuId=p.sku_id, body={"userId": u}
            )
        ),
        409,
    )
    if failed:
        # Google refuses a license the user holds already (412): read again and compare.
        now_have = licensed_users(ctx, found["domain"], p.sku_id)
        done += [u for u in failed if u in now_have]
        failed = {u: e for u, e in failed.items() if u not in now_have}
    if found["already"]:
        ctx.log(f"{len(found['already'])} user(s) already held the license.")
    _refuse_failures(failed, "assign")
    return {"assigned": sorted(done), "already": found["already"]}


def _revoke(ctx: StepContext) -> dict[str, Any]:
    p: LicenseChange = ctx.params

    def plan() -> dict[str, Any]:
        customer = find_customer(ctx, p.customer)
        have = licensed_users(ctx, customer["customerDomain"], p.sku_id)
        return {
            "domain": customer["customerDomain"],
            "todo": [u for u in p.users if u in have],
            "absent": sorted(set(p.users) - have),
        }

    found = _plan(ctx, plan)
    product = product_of(p.sku_id)
    done, failed = _in_chunks(
        ctx,
        found["todo"],
        "licensing.licenseAssignments.delete",
        lambda u: (
            lambda svc: svc.licenseAssignments().delete(productId=product, skuId=p.sku_id, userId=u)
        ),
        404,
    )
    if failed:
        now_have = licensed_users(ctx, found["domain"], p.sku_id)
        done += [u for u in failed if u not in now_have]
        failed = {u: e for u, e in failed.items() if u in now_have}
    _refuse_failures(failed, "revoke")
    return {"revoked": sorted(done), "absent": found["absent"]}


LICENSE_ASSIGN = Operation(
    name="license.assign",
    summary="Assign a SKU's license to many users (batched; users who hold it are skipped).",
    params_model=LicenseChange,
    steps=((STEP, _assign),),
    result=lambda cp: cp["licenses"],
)
LICENSE_REVOKE = Operation(
    name="license.revoke",
    summary="Revoke a SKU's license from many users (batched; users without it are skipped).",
    params_model=LicenseChange,
    steps=((STEP, _revoke),),
    result=lambda cp: cp["licenses"],
)
