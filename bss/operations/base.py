"""What an operation is: validated params and an ordered list of checkpointed steps."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel, ConfigDict, ValidationError

from bss.errors import ValidationFailed
from bss.gateway import Gateway


class Params(BaseModel):
    """Base of every operation's params: unknown fields are refused, not ignored."""

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)


@dataclass
class StepContext:
    """What a step sees: the gateway, the validated params and earlier steps' outputs."""

    gateway: Gateway
    params: Any
    checkpoint: dict[str, Any]
    log: Callable[[str], None] = field(default=lambda _msg: None)


Step = tuple[str, Callable[[StepContext], dict[str, Any]]]


@dataclass(frozen=True)
class Operation:
    """A named provisioning operation."""

    name: str
    summary: str
    params_model: type[Params]
    steps: tuple[Step, ...]
    result: Callable[[dict[str, Any]], dict[str, Any]]

    def validate(self, params: Any) -> Params:
        """The params as the operation's model, or ValidationFailed listing every bad field."""
        if not isinstance(params, dict):
            raise ValidationFailed(
                "params must be a JSON object.",
                details=[{"field": "params", "problem": "must be an object"}],
            )
        try:
            return self.params_model.model_validate(params)
        except ValidationError as exc:
            raise ValidationFailed(
                f"The params of {self.name} are invalid.",
                details=[
                    {
                        "field": ".".join(["params", *(str(p) for p in e["loc"])]),
                        "problem": e["msg"],
                    }
                    for e in exc.errors()
                ],
            ) from exc
