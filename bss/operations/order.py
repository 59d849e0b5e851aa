"""order.create: customer, first admin, subscriptions and a welcome email, one checkpoint each."""

from __future__ import annotations

import base64
import time
from email.message import EmailMessage
from typing import Any

from pydantic import EmailStr, Field

from bss.errors import TransientGoogleError
from bss.operations import rules
from bss.operations.base import Operation, Params, StepContext
from bss.operations.common import claim
from bss.operations.customer import CustomerCreate
from bss.operations.customer_create import customer_steps
from bss.operations.subscription import SubscriptionTerms, create_subscription
from bss.operations.user import (
    PASSWORD_SECRET,
    AdminUser,
    ensure_admin,
    ensure_password,
    ensure_user,
)

# In-step attempts at sending the welcome email when Google answered that it did not send it.
SEND_ATTEMPTS = 4


class WelcomeEmail(Params):
    to: EmailStr | None = Field(
        default=None, description="Who receives it (default: the customer's alternate_email)"
    )


class OrderCreate(Params):
    customer: CustomerCreate
    admin: AdminUser
    subscriptions: list[SubscriptionTerms] = Field(default_factory=list, max_length=20)
    welcome_email: WelcomeEmail | None = Field(
        default=None,
        description="Send the admin's sign-in details through the instance's Gmail",
    )

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[rules.Problem]:
        return rules.order(data, at)


def _customer_id(ctx: StepContext) -> str:
    return str(ctx.checkpoint["customer"]["customerId"])


def _subscriptions(ctx: StepContext) -> dict[str, Any]:
    p: OrderCreate = ctx.params
    out = []
    for item in p.subscriptions:
        out.append(
            create_subscription(
                ctx, _customer_id(ctx), p.customer.domain, item, step="subscriptions"
            )
        )
    return {"subscriptions": out}


def _claim_email(ctx: StepContext) -> dict[str, Any]:
    return {"requested": ctx.params.welcome_email is not None}


def _message(p: OrderCreate, password: str | None) -> str:
    msg = EmailMessage()
    assert p.welcome_email is not None
    msg["To"] = str(p.welcome_email.to or p.customer.alternate_email)
    msg["Subject"] = f"Your Google Workspace for {p.customer.domain} is ready"
    lines = [
        f"Hello {p.admin.given_name},",
        "",
        f"Google Workspace for {p.customer.domain} is ready. Sign in at "
        "https://admin.google.com with:",
        "",
        f"  Username: {p.admin.primary_email}",
    ]
    if password:
        lines.append(f"  Temporary password: {password}")
        lines.append("")
        lines.append("You will be asked to choose a new password when you first sign in.")
    msg.set_content("\n".join(lines) + "\n")
    return base64.urlsafe_b64encode(msg.as_bytes()).decode()


def _send_email(ctx: StepContext) -> dict[str, Any]:
    """Send once. Gmail cannot be asked whether an earlier attempt went out, so when that is
    unknown we do not send again: the password is delivered in the job's result instead."""
    p: OrderCreate = ctx.params
    if p.welcome_email is None:
        return {"sent": False}
    generated = p.admin.password is None
    password = ctx.store.get_secret(PASSWORD_SECRET) if generated else None

    def unknown(why: str) -> dict[str, Any]:
        ctx.log(f"Welcome email may not have been sent ({why}); not sending it twice.")
        if password:
            ctx.store.put_secret(PASSWORD_SECRET, password, reveal=True)
        return {"sent": "unknown"}

    if "welcome_email_claim" not in ctx.fresh:
        return unknown("an earlier attempt stopped while sending it")
    raw = _message(p, password)
    for attempt in range(SEND_ATTEMPTS):
        try:
            sent = ctx.gateway.call(
                "gmail.users.messages.send",
                lambda svc: svc.users().messages().send(userId="me", body={"raw": raw}),
            )
            return {"sent": True, "messageId": sent.get("id")}
        except TransientGoogleError as exc:
            if exc.status is None:  # no answer: it may have gone out
                return unknown(exc.message)
            if attempt == SEND_ATTEMPTS - 1:
                return unknown(f"Gmail kept answering {exc.status}")
            time.sleep(0.5 * 2**attempt)
    raise AssertionError("unreachable")  # pragma: no cover


def _result(cp: dict[str, Any]) -> dict[str, Any]:
    return {
        "customer_id": cp["customer"]["customerId"],
        "customer_created": cp["customer"]["created"],
        "admin": cp["admin_user"]["primaryEmail"],
        "admin_created": cp["admin_user"]["created"],
        "password_generated": cp["admin_password"]["generated"],
        "subscriptions": cp["subscriptions"]["subscriptions"],
        "welcome_email": cp["welcome_email"]["sent"],
    }


ORDER_CREATE = Operation(
    name="order.create",
    summary="A whole order: customer, first admin user, subscriptions, optional welcome email.",
    params_model=OrderCreate,
    steps=(
        *customer_steps(lambda ctx: ctx.params.customer),
        (
            "admin_password",
            lambda ctx: ensure_password(
                ctx, ctx.params.admin, reveal=ctx.params.welcome_email is None
            ),
        ),
        claim("admin_user"),
        (
            "admin_user",
            lambda ctx: ensure_user(ctx, ctx.params.admin, _customer_id(ctx), step="admin_user"),
        ),
        ("admin_role", lambda ctx: ensure_admin(ctx, str(ctx.params.admin.primary_email))),
        claim("subscriptions"),
        ("subscriptions", _subscriptions),
        ("welcome_email_claim", _claim_email),
        ("welcome_email", _send_email),
    ),
    result=_result,
    secret_fields=("admin.password",),
)
