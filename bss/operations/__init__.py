"""The provisioning operations billing systems can ask for, by name."""

from bss.errors import ValidationFailed
from bss.operations.base import Operation, Params, StepContext
from bss.operations.customer import CUSTOMER_CREATE

OPERATIONS: dict[str, Operation] = {op.name: op for op in (CUSTOMER_CREATE,)}


def get_operation(name: str) -> Operation:
    """The operation called `name`, or ValidationFailed naming the ones there are."""
    try:
        return OPERATIONS[name]
    except KeyError:
        raise ValidationFailed(
            f"Unknown operation {name!r}.",
            details=[{"field": "operation", "problem": f"must be one of {sorted(OPERATIONS)}"}],
        ) from None


__all__ = ["OPERATIONS", "Operation", "Params", "StepContext", "get_operation"]
