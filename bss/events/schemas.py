"""Public shapes of what the billing API answers about Google's side: a customer and its
subscriptions as Google holds them (from the mirror, with when Google last confirmed them), and
drift, the differences between what billing ordered and what Google has (also the OpenAPI
document).

The customer views are built by `mirror_views.py` (the same words as the webhooks' `before` and
`after`); the API validates each answer against these shapes, so the document and the answers
cannot part.
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from bss.models import Drift, iso

DriftField = Literal["seats", "plan", "renewal", "status", "customer", "exists"]
CustomerStatus = Literal["active", "transferred_away", "deleted"]


class SubscriptionPublic(BaseModel):
    """A subscription as Google has it (the mirror), in the words billing's webhooks use for
    `before` and `after`."""

    subscription_id: str | None = None
    sku_id: str | None = Field(default=None, examples=["1010020027"])
    sku_name: str | None = Field(default=None, examples=["Google Workspace Business Starter"])
    status: str | None = Field(default=None, examples=["ACTIVE"])
    suspension_reasons: list[str] = Field(default_factory=list)
    plan: str | None = Field(default=None, examples=["FLEXIBLE"])
    seats: int | None = Field(
        default=None,
        description="Seats paid for: numberOfSeats on annual plans, maximumNumberOfSeats on "
        "FLEXIBLE and TRIAL",
    )
    renewal_type: str | None = Field(default=None, examples=["AUTO_RENEW_MONTHLY_PAY"])
    commitment_end: str | None = Field(
        default=None, description="End of an annual commitment (epoch milliseconds, as Google)"
    )
    open_drift: int = Field(
        default=0, description="Open differences between this and what billing ordered"
    )


class CustomerPublic(BaseModel):
    """A customer as Google has it, from our mirror, with when Google last confirmed it."""

    customer_id: str = Field(examples=["C01abc234"])
    customer_domain: str = Field(examples=["example.com"])
    instance: str = Field(description="The instance's System Name")
    status: CustomerStatus = Field(
        description="active; transferred_away (to another reseller or to Google direct); "
        "deleted at Google"
    )
    confirmed_at: str | None = Field(
        description="When Google last confirmed this (a sync, a notification, a reconciliation)"
    )
    last_event_time: str | None = Field(
        default=None, description="Google's time of the newest notification applied"
    )
    alternate_email: str | None = None
    customer_type: str | None = None
    organization_name: str | None = None
    subscriptions: int = Field(description="How many subscriptions Google lists")
    open_drift: int = Field(default=0, description="Open differences on this customer")
    subscriptions_url: str | None = None


class CustomerSubscriptions(BaseModel):
    """A customer's subscriptions as Google has them."""

    customer_id: str
    customer_domain: str
    instance: str
    status: CustomerStatus
    confirmed_at: str | None
    subscriptions: list[SubscriptionPublic]


class CustomerPath(BaseModel):
    customer: str = Field(
        min_length=1,
        max_length=253,
        description="The customer's primary domain (example.com) or Google customer id (C0...)",
    )


class DriftPublic(BaseModel):
    """A difference between what billing ordered and what Google holds."""

    id: str = Field(examples=["drift_3f2c1a2b4d5e"])
    state: Literal["open", "resolved"]
    instance: str
    customer_id: str
    customer_domain: str | None
    subscription_id: str | None
    sku_id: str | None
    field: DriftField = Field(
        description="seats, plan, renewal, status; customer (transferred away); exists "
        "(deleted at Google)"
    )
    desired: Any = Field(description="What billing ordered")
    actual: Any = Field(description="What Google holds")
    desired_job_id: str | None = Field(description="The succeeded job that set `desired`")
    detected_by: Literal["event", "reconcile"]
    detected_at: str | None
    updated_at: str | None
    resolved_at: str | None = None
    resolution: Literal["accepted", "restored", "cleared"] | None = None
    resolution_job_id: str | None = Field(
        default=None, description="The job that restores billing's value (resolution restored)"
    )
    resolved_by: str | None = None

    @classmethod
    def of(cls, drift: Drift, *, instance_name: str) -> DriftPublic:
        return cls(
            id=drift.id,
            state=drift.state,  # type: ignore[arg-type]
            instance=instance_name,
            customer_id=drift.customer_id,
            customer_domain=drift.customer_domain,
            subscription_id=drift.subscription_id,
            sku_id=drift.sku_id,
            field=drift.field,  # type: ignore[arg-type]
            desired=drift.desired,
            actual=drift.actual,
            desired_job_id=drift.desired_job_id,
            detected_by=drift.detected_by,  # type: ignore[arg-type]
            detected_at=iso(drift.detected_at),
            updated_at=iso(drift.updated_at),
            resolved_at=iso(drift.resolved_at),
            resolution=drift.resolution,  # type: ignore[arg-type]
            resolution_job_id=drift.resolution_job_id,
            resolved_by=drift.resolved_by,
        )


class DriftListQuery(BaseModel):
    """Filters and paging of GET /drift (newest first; follow `next_cursor` for more)."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["open", "resolved"] = "open"
    instance: str | None = Field(default=None, max_length=100, description="System Name")
    customer: str | None = Field(
        default=None, max_length=253, description="The customer's domain or customer id"
    )
    field: DriftField | None = None
    limit: int = Field(default=50, ge=1, le=200)
    cursor: str | None = Field(default=None, max_length=500, description="From next_cursor")


class DriftList(BaseModel):
    """A page of differences."""

    drift: list[DriftPublic]
    next_cursor: str | None = Field(description="Pass as `cursor` for the next page; null: last")


class DriftPath(BaseModel):
    drift_id: str = Field(max_length=40)


class DriftResolve(BaseModel):
    """How to resolve a difference."""

    model_config = ConfigDict(extra="forbid")

    action: Literal["accept", "restore"] = Field(
        description="accept: Google's value becomes what billing ordered (nothing changes at "
        "Google). restore: a job puts billing's value back at Google."
    )


class DriftResolution(BaseModel):
    """A resolved difference, and the job that restores billing's value (restore only)."""

    drift: DriftPublic
    job_id: str | None = None
    job_url: str | None = None


RESOLVE_EXAMPLES = {
    "accept": {
        "summary": "accept Google's value as what billing ordered",
        "value": {"action": "accept"},
    },
    "restore": {
        "summary": "restore billing's value at Google with a job",
        "value": {"action": "restore"},
    },
}
