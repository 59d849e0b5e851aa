"""What an operation is: validated params and an ordered list of checkpointed steps."""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, ValidationError

from bss.errors import RulesBroken, ValidationFailed, problems
from bss.gateway import Gateway


class Params(BaseModel):
    """Base of every operation's params: unknown fields are refused, not ignored.

    `cross_checks(raw, at)` lists problems across fields (see bss.operations.rules): they are
    checked on the raw params beside the field checks, so that every problem is told at once.
    """

    model_config = ConfigDict(extra="forbid", str_strip_whitespace=True)

    @staticmethod
    def cross_checks(data: dict[str, Any], at: str = "") -> list[Any]:
        return []


class JobStore(Protocol):
    """What the job engine keeps for a step besides its checkpoint: secrets and mirrors."""

    def get_secret(self, name: str) -> str | None:
        """A secret of this job (decrypted), or None."""

    def put_secret(self, name: str, value: str, *, reveal: bool) -> None:
        """Keep a secret of this job, encrypted; `reveal`: show it once in the job's result."""

    def save_mirror(self, customer: dict[str, Any], **parts: list[Any]) -> None:
        """Store the local mirror of a customer read from Google."""


class NoStore:
    """A JobStore that keeps nothing (for steps run outside the job engine)."""

    def __init__(self) -> None:
        self.secrets: dict[str, str] = {}

    def get_secret(self, name: str) -> str | None:
        return self.secrets.get(name)

    def put_secret(self, name: str, value: str, *, reveal: bool) -> None:
        self.secrets[name] = value

    def save_mirror(self, customer: dict[str, Any], **parts: list[Any]) -> None:
        return None


@dataclass
class StepContext:
    """What a step sees: the gateway, the validated params and earlier steps' outputs."""

    gateway: Gateway
    params: Any
    checkpoint: dict[str, Any]
    log: Callable[[str], None] = field(default=lambda _msg: None)
    store: JobStore = field(default_factory=NoStore)
    # Steps finished during this attempt (not an earlier one): a step may rely on its own
    # marker step having run just now to know an earlier attempt did not get that far.
    fresh: set[str] = field(default_factory=set)
    # When the job was accepted: something at Google created after that is this job's doing.
    accepted_at: datetime | None = None
    # A long step saves its progress after each chunk: (step, state, done, total, unit). The
    # state comes back in `partial(step)` on the next run; the job engine may pause the job
    # there (its thread goes to other jobs) and resume it later, from that state.
    save_progress: Callable[[str, dict[str, Any], int, int, str], None] = field(
        default=lambda *_args: None
    )

    def partial(self, step: str) -> dict[str, Any] | None:
        """The state a long step saved with its last chunk, or None on its first run."""
        saved = self.checkpoint.get(PARTIAL_KEY) or {}
        return saved.get(step)


Step = tuple[str, Callable[[StepContext], dict[str, Any]]]
# Marker steps (see common.claim) change nothing at Google: they are not shown to billing.
MARKER_SUFFIX = "_claim"
# Where long steps keep their partial state in the checkpoint (not a step: not shown either).
PARTIAL_KEY = "_partial"


def snake_keys(value: Any) -> Any:
    """`value` with every mapping key in snake_case (subscriptionId → subscription_id): our API
    speaks snake_case, while the steps keep Google's names in their checkpoints."""
    if isinstance(value, dict):
        return {_snake(str(k)): snake_keys(v) for k, v in value.items()}
    if isinstance(value, list):
        return [snake_keys(v) for v in value]
    return value


def _snake(key: str) -> str:
    return re.sub(r"(?<=[a-z0-9])([A-Z])", r"_\1", key).lower()


def shown_steps(names: Any) -> list[str]:
    """Step names as billing sees them: without the marker steps."""
    return [n for n in names if not n.endswith(MARKER_SUFFIX) and n != PARTIAL_KEY]


@dataclass(frozen=True)
class Operation:
    """A named provisioning operation."""

    name: str
    summary: str
    params_model: type[Params]
    steps: tuple[Step, ...]
    result: Callable[[dict[str, Any]], dict[str, Any]]
    # Dotted paths of params that are secrets (a password): kept encrypted, never in the row.
    secret_fields: tuple[str, ...] = ()

    def outcome(self, checkpoint: dict[str, Any]) -> dict[str, Any]:
        """The job's result from its checkpoints, in the API's snake_case."""
        return dict(snake_keys(self.result(checkpoint)))

    def validate(self, params: Any) -> Params:
        """The params as the operation's model, or a refusal listing every problem at its field:
        RulesBroken when all of them are Google's rules, ValidationFailed otherwise."""
        if not isinstance(params, dict):
            raise ValidationFailed(
                "params must be a JSON object.",
                details=[{"field": "params", "problem": "must be an object"}],
            )
        crossed = self.params_model.cross_checks(params)
        details = [{"field": f"params.{p.field}", "problem": p.problem} for p in crossed]
        try:
            model = self.params_model.model_validate(params)
        except ValidationError as exc:
            details = problems(exc.errors(), under=("params",)) + details
        if not details:
            return model
        if crossed and len(details) == len(crossed) and all(p.rule for p in crossed):
            raise RulesBroken(
                f"The params of {self.name} break Google's rules; nothing was sent to Google.",
                details=details,
            )
        raise ValidationFailed(f"The params of {self.name} are invalid.", details=details)
