"""The provisioning operations billing systems can ask for, by name."""

from bss.errors import ValidationFailed
from bss.operations.base import (
    PARTIAL_KEY,
    Operation,
    Params,
    StepContext,
    shown_steps,
    snake_keys,
)
from bss.operations.common import ANNUAL_PLANS, plan_of, seats_of
from bss.operations.customer import (
    CUSTOMER_SYNC,
    CUSTOMER_TRANSFER,
    CUSTOMER_UPDATE,
)
from bss.operations.customer_create import CUSTOMER_CREATE
from bss.operations.examples import request_examples
from bss.operations.license import LICENSE_ASSIGN, LICENSE_REVOKE
from bss.operations.order import ORDER_CREATE
from bss.operations.subscription import SUBSCRIPTION_OPERATIONS
from bss.operations.subscription_lifecycle import SUBSCRIPTION_LIFECYCLE_OPERATIONS
from bss.operations.user import USER_CREATE_ADMIN

OPERATIONS: dict[str, Operation] = {
    op.name: op
    for op in (
        ORDER_CREATE,
        CUSTOMER_CREATE,
        CUSTOMER_UPDATE,
        CUSTOMER_TRANSFER,
        CUSTOMER_SYNC,
        *SUBSCRIPTION_OPERATIONS,
        *SUBSCRIPTION_LIFECYCLE_OPERATIONS,
        USER_CREATE_ADMIN,
        LICENSE_ASSIGN,
        LICENSE_REVOKE,
    )
}


def get_operation(name: str) -> Operation:
    """The operation called `name`, or ValidationFailed naming the ones there are."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise ValidationFailed(
            f"Unknown operation {name!r}.",
            details=[{"field": "operation", "problem": f"must be one of {sorted(OPERATIONS)}"}],
        ) from None


__all__ = [
    "ANNUAL_PLANS",
    "PARTIAL_KEY",
    "OPERATIONS",
    "Operation",
    "Params",
    "StepContext",
    "get_operation",
    "plan_of",
    "request_examples",
    "seats_of",
    "shown_steps",
    "snake_keys",
]
