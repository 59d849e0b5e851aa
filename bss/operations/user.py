"""Users: the customer's first admin, with a password given or generated (never kept in clear)."""

from __future__ import annotations

import secrets
import string
from typing import Any

from pydantic import EmailStr, Field, SecretStr, field_validator

from bss.errors import PermanentGoogleError
from bss.operations.base import Operation, Params, StepContext
from bss.operations.common import claim, created_since_accepted, tried_before

PASSWORD_SECRET = "admin_password"  # noqa: S105 (the name of a secret, not one)
PASSWORD_ALPHABET = string.ascii_letters + string.digits + "-_.!"


def generate_password(length: int = 16) -> str:
    """A random password Google accepts (8-100 characters), with a digit and both cases."""
    while True:
        value = "".join(secrets.choice(PASSWORD_ALPHABET) for _ in range(length))
        if (
            any(c.isdigit() for c in value)
            and any(c.islower() for c in value)
            and any(c.isupper() for c in value)
        ):
            return value


class AdminUser(Params):
    primary_email: EmailStr = Field(description="The admin's address on the customer's domain")
    given_name: str = Field(min_length=1, max_length=60)
    family_name: str = Field(min_length=1, max_length=60)
    password: SecretStr | None = Field(
        default=None,
        min_length=8,
        max_length=100,
        description="8-100 characters; omit it to have one generated and delivered once",
    )

    @field_validator("primary_email", mode="after")
    @classmethod
    def _lower(cls, v: str) -> str:
        return v.lower()

    @property
    def domain(self) -> str:
        return str(self.primary_email).rsplit("@", 1)[1]


class UserCreateAdmin(AdminUser):
    pass


def ensure_password(ctx: StepContext, p: AdminUser, *, reveal: bool) -> dict[str, Any]:
    """The admin's password, kept encrypted: the one given, or one generated once per job."""
    if p.password is not None:
        return {"generated": False}
    if ctx.store.get_secret(PASSWORD_SECRET) is None:
        ctx.store.put_secret(PASSWORD_SECRET, generate_password(), reveal=reveal)
    return {"generated": True}


def _password(ctx: StepContext, p: AdminUser) -> str:
    if p.password is not None:
        return p.password.get_secret_value()
    value = ctx.store.get_secret(PASSWORD_SECRET)
    if value is None:  # the secret was wiped: the job finished once already
        raise PermanentGoogleError(
            "The generated password is gone.",
            reason="passwordWiped",
            hint="Submit a new job; this one cannot set a password any more.",
        )
    return value


def ensure_user(
    ctx: StepContext, p: AdminUser, cid: str | None = None, *, step: str = "user"
) -> dict[str, Any]:
    """users.get, then users.insert when absent; a 409 means it exists: read and compare.

    A user found is this job's (`created`) when an earlier attempt reached `step` (see `claim`)
    and Google created it after the job was accepted: the insert's answer was lost.
    """
    email = str(p.primary_email)
    found = ctx.gateway.get_or_none(
        "directory.users.get", lambda svc: svc.users().get(userKey=email)
    )
    if found is None:
        body = {
            "primaryEmail": email,
            "password": _password(ctx, p),
            "name": {"givenName": p.given_name, "familyName": p.family_name},
            "changePasswordAtNextLogin": True,
        }
        try:
            found = ctx.gateway.call(
                "directory.users.insert", lambda svc: svc.users().insert(body=body)
            )
            return {"userId": found.get("id"), "primaryEmail": email, "created": True}
        except PermanentGoogleError as exc:
            if exc.status != 409:
                raise
            found = ctx.gateway.call(
                "directory.users.get", lambda svc: svc.users().get(userKey=email)
            )
    if cid and found.get("customerId") and found["customerId"] != cid:
        raise PermanentGoogleError(
            f"{email} belongs to another Google customer.",
            status=409,
            reason="duplicate",
            method="directory.users.get",
            hint="Use an address on this customer's own domain.",
        )
    ours = tried_before(ctx, step) and created_since_accepted(ctx, found.get("creationTime"))
    ctx.log(
        f"User {email} already exists at Google"
        + ("; it was created by this job before its answer was lost." if ours else ".")
    )
    return {"userId": found.get("id"), "primaryEmail": email, "created": ours}


def ensure_admin(ctx: StepContext, email: str) -> dict[str, Any]:
    """users.get; makeAdmin only when the user is not an admin yet."""
    user = ctx.gateway.call("directory.users.get", lambda svc: svc.users().get(userKey=email))
    if user.get("isAdmin"):
        return {"primaryEmail": email, "isAdmin": True, "changed": False}
    ctx.gateway.call(
        "directory.users.makeAdmin",
        lambda svc: svc.users().makeAdmin(userKey=email, body={"status": True}),
    )
    return {"primaryEmail": email, "isAdmin": True, "changed": True}


USER_CREATE_ADMIN = Operation(
    name="user.create_admin",
    summary="Create a user on the customer's domain and make it a super admin.",
    params_model=UserCreateAdmin,
    steps=(
        ("password", lambda ctx: ensure_password(ctx, ctx.params, reveal=True)),
        claim("user"),
        ("user", lambda ctx: ensure_user(ctx, ctx.params)),
        ("admin", lambda ctx: ensure_admin(ctx, str(ctx.params.primary_email))),
    ),
    result=lambda cp: {
        "user": cp["user"]["primaryEmail"],
        "created": cp["user"]["created"],
        "is_admin": True,
        "password_generated": cp["password"]["generated"],
    },
    secret_fields=("password",),
)
