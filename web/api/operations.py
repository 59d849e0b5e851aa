"""Billing API v1, operations: what can be submitted, with its steps and params model."""

from __future__ import annotations

from bss.jobs import OperationInfo, OperationList
from bss.operations import OPERATIONS, shown_steps
from web.api.blueprint import bp


@bp.get("/operations", responses={200: OperationList})
def list_operations():
    """The operations you can submit, with their steps and the model of their params."""
    return {
        "operations": [
            OperationInfo(
                name=op.name,
                summary=op.summary,
                params_schema=f"#/components/schemas/{op.params_model.__name__}",
                steps=shown_steps(name for name, _ in op.steps),
            ).model_dump()
            for op in OPERATIONS.values()
        ]
    }
