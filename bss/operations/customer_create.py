"""customer.create: look first, then insert only a customer Google does not have.

The look is a step of its own (`customer_check`), saved before the insert: when the insert's
answer is lost and the job tries again, the saved look says the domain was free after the job
was accepted, so the customer found now is the one this job created (`created: true`), checked
against what the insert sent. The Reseller API gives customers no creation time to compare.
"""

from __future__ import annotations

from typing import Any

from bss.errors import PermanentGoogleError
from bss.operations.base import Operation, StepContext
from bss.operations.common import is_partial_view
from bss.operations.customer import CustomerCreate

CHECK = "customer_check"


def _get(ctx: StepContext, domain: str) -> dict[str, Any] | None:
    found = ctx.gateway.get_or_none(
        "reseller.customers.get", lambda svc: svc.customers().get(customerId=domain)
    )
    if found is not None and is_partial_view(found):
        raise PermanentGoogleError(
            f"{domain} is a Google customer of another reseller.",
            status=200,
            reason="managedByAnotherReseller",
            method="reseller.customers.get",
            hint="Transfer it with customer.transfer and the customer's transfer token.",
        )
    return found


def _as_we_wrote(found: dict[str, Any], p: CustomerCreate) -> bool:
    """Whether Google's customer carries what this job's insert sent (contact and address)."""
    sent = p.to_google()
    address = found.get("postalAddress") or {}
    return str(found.get("alternateEmail", "")).lower() == sent["alternateEmail"].lower() and all(
        address.get(k) == v for k, v in sent["postalAddress"].items()
    )


def check_customer(ctx: StepContext, p: CustomerCreate) -> dict[str, Any]:
    """customers.get: the id of the customer Google already has, or None (the domain is free)."""
    found = _get(ctx, p.domain)
    return {"customerId": found["customerId"] if found else None}


def create_customer(ctx: StepContext, p: CustomerCreate) -> dict[str, Any]:
    """The customer `p` at Google: found by the check (not ours), or inserted."""
    check = ctx.checkpoint.get(CHECK) or check_customer(ctx, p)
    if check["customerId"]:
        ctx.log(f"Customer {p.domain} already exists at Google; not creating it again.")
        return {"customerId": check["customerId"], "created": False}
    if CHECK not in ctx.fresh:
        # An earlier attempt found the domain free and went on to insert: look again.
        found = _get(ctx, p.domain)
        if found is not None:
            ours = _as_we_wrote(found, p)
            ctx.log(
                f"Customer {p.domain} exists at Google"
                + ("; this job created it before its answer was lost." if ours else ".")
            )
            return {"customerId": found["customerId"], "created": ours}
    try:
        created = ctx.gateway.call(
            "reseller.customers.insert",
            lambda svc: svc.customers().insert(body=p.to_google()),
        )
    except PermanentGoogleError as exc:
        if exc.status != 409:
            raise
        # Someone created it between our check and our insert: read it. That may be an earlier
        # attempt's insert, which Google applied after we stopped waiting for its answer.
        found = _get(ctx, p.domain)
        if found is None:
            raise
        ours = CHECK not in ctx.fresh and _as_we_wrote(found, p)
        ctx.log(
            f"Customer {p.domain} appeared at Google meanwhile"
            + (
                "; an earlier attempt of this job created it."
                if ours
                else "; not creating it again."
            )
        )
        return {"customerId": found["customerId"], "created": ours}
    return {"customerId": created["customerId"], "created": True}


def customer_steps(params_of: Any) -> tuple[Any, ...]:
    """The check and create steps, for the customer `params_of(ctx)` names."""
    return (
        (CHECK, lambda ctx: check_customer(ctx, params_of(ctx))),
        ("customer", lambda ctx: create_customer(ctx, params_of(ctx))),
    )


CUSTOMER_CREATE = Operation(
    name="customer.create",
    summary="Create a Google Workspace customer (checks first that the domain is free).",
    params_model=CustomerCreate,
    steps=customer_steps(lambda ctx: ctx.params),
    result=lambda cp: {
        "customer_id": cp["customer"]["customerId"],
        "created": cp["customer"]["created"],
    },
)
