"""Injected trouble: faults by API method, added latency, per-project quotas."""

from __future__ import annotations

import fnmatch
import random
import threading
import time
from collections import deque

from bss.sandbox.errors import ApiError, ControlError
from bss.sandbox.state import State

FAULT_KINDS = ("error", "timeout", "drop", "applied_response_lost")
#: Seconds a "timeout" fault sleeps unless told otherwise: longer than most socket timeouts.
DEFAULT_TIMEOUT_SECONDS = 30.0
#: APIs whose rate-limit answer is 403 rather than 429 (the Admin SDK's older front end).
FORBIDDEN_RATE_LIMIT_APIS = ("admin.googleapis.com",)

#: Set while the server shuts down, so sleeping requests wake up.
stopping = threading.Event()


def pause(seconds: float) -> None:
    """Sleep, unless the server is stopping."""
    if seconds > 0:
        stopping.wait(seconds)


def add_fault(state: State, spec: dict) -> dict:
    """Validate and store a fault rule; returns it with its id."""
    method = spec.get("method")
    kind = spec.get("kind", "error")
    if not isinstance(method, str) or not method:
        raise ControlError(
            400, "method is required (a method id such as reseller.customers.insert, globs allowed)"
        )
    if kind not in FAULT_KINDS:
        raise ControlError(400, f"kind must be one of {', '.join(FAULT_KINDS)}")
    times, probability = spec.get("times"), spec.get("probability")
    if times is not None and (not isinstance(times, int) or times < 1):
        raise ControlError(400, "times must be a positive integer")
    if probability is not None and not (
        isinstance(probability, int | float) and 0 <= probability <= 1
    ):
        raise ControlError(400, "probability must be between 0 and 1")
    if times is None and probability is None:
        times = 1
    # SMTP methods (smtp.connect, smtp.auth, smtp.mail, smtp.data) answer an SMTP reply code.
    status = spec.get("status", 421 if method.startswith("smtp.") else 503)
    if isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599:
        raise ControlError(400, "status must be an HTTP or SMTP error code between 400 and 599")
    seconds = spec.get("seconds", DEFAULT_TIMEOUT_SECONDS)
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "seconds must be a non-negative number")
    for name in ("reason", "message", "project"):
        if spec.get(name) is not None and not isinstance(spec[name], str):
            raise ControlError(400, f"{name} must be a string")
    rule = {
        "id": f"fault-{state.next_number()}",
        "method": method,
        "kind": kind,
        "status": status,
        "reason": spec.get("reason") or ("backendError" if kind == "error" else None),
        "message": spec.get("message"),
        "times": times,
        "probability": probability,
        "seconds": float(seconds),
        "project": spec.get("project"),
    }
    state.faults.append(rule)
    return rule


def take_fault(state: State, method: str, project: str | None) -> dict | None:
    """The first fault rule that fires for this call, consuming one of its ``times``."""
    for rule in list(state.faults):
        if not fnmatch.fnmatchcase(method, rule["method"]):
            continue
        if rule["project"] and rule["project"] != project:
            continue
        if rule["times"] is not None:
            rule["times"] -= 1
            if rule["times"] <= 0:
                state.faults.remove(rule)
            return rule
        if random.random() < rule["probability"]:
            return rule
    return None


#: Google's classic message and error domain for reasons a fault is likely to name.
FAULT_REASONS = {
    "backendError": ("Backend Error", "global"),
    "internalError": ("Internal Error", "global"),
    "rateLimitExceeded": ("Rate Limit Exceeded", "usageLimits"),
    "userRateLimitExceeded": ("User Rate Limit Exceeded", "usageLimits"),
    "quotaExceeded": ("Quota Exceeded", "usageLimits"),
    "dailyLimitExceeded": ("Daily Limit Exceeded", "usageLimits"),
}


def fault_error(rule: dict) -> ApiError:
    """The error an ``error`` fault answers; its JSON shape is the called API's own."""
    reason = rule["reason"] or "backendError"
    message, domain = FAULT_REASONS.get(reason, (None, "global"))
    return ApiError(rule["status"], reason, rule["message"] or message, domain=domain)


def add_latency(state: State, spec: dict) -> dict:
    seconds = spec.get("seconds")
    if isinstance(seconds, bool) or not isinstance(seconds, int | float) or seconds < 0:
        raise ControlError(400, "seconds must be a non-negative number")
    method = spec.get("method") or "*"
    if not isinstance(method, str):
        raise ControlError(400, "method must be a method id such as reseller.* (globs allowed)")
    rule = {"method": method, "seconds": float(seconds)}
    state.latency = [r for r in state.latency if r["method"] != rule["method"]]
    if seconds > 0:
        state.latency.append(rule)
    return rule


def latency_for(state: State, method: str) -> float:
    return max(
        (r["seconds"] for r in state.latency if fnmatch.fnmatchcase(method, r["method"])),
        default=0.0,
    )


def set_quota(state: State, spec: dict) -> dict:
    project, api, per_second = spec.get("project"), spec.get("api"), spec.get("per_second")
    if project not in state.projects:
        raise ControlError(404, f"no project {project!r}")
    if not isinstance(api, str) or not api:
        raise ControlError(400, "api is required, e.g. reseller.googleapis.com")
    key = f"{project}|{api}"
    if per_second is None:
        state.quotas.pop(key, None)
        return {"project": project, "api": api, "per_second": None}
    if isinstance(per_second, bool) or not isinstance(per_second, int | float) or per_second <= 0:
        raise ControlError(400, "per_second must be a positive number (null removes the quota)")
    status = spec.get("status")
    if status is not None and (
        isinstance(status, bool) or not isinstance(status, int) or not 400 <= status <= 599
    ):
        raise ControlError(400, "status must be an HTTP error code between 400 and 599")
    rule = {
        "project": project,
        "api": api,
        "per_second": float(per_second),
        "status": status,
    }
    state.quotas[key] = rule
    state.quota_hits[key] = deque()
    return rule


def check_quota(state: State, project: dict, api: str) -> None:
    """Count the call against the project's quota; Google's rate-limit error when over it."""
    key = f"{project['project_id']}|{api}"
    rule = state.quotas.get(key)
    if rule is None:
        return
    window = max(1.0, 1.0 / rule["per_second"])
    limit = max(1, round(rule["per_second"] * window))
    hits = state.quota_hits.setdefault(key, deque())
    now = time.monotonic()
    while hits and hits[0] <= now - window:
        hits.popleft()
    if len(hits) < limit:
        hits.append(now)
        return
    status = rule["status"] or (403 if api in FORBIDDEN_RATE_LIMIT_APIS else 429)
    message = (
        f"Quota exceeded for quota metric 'Queries' and limit 'Queries per second' of "
        f"service '{api}' for consumer 'project_number:{project['project_number']}'."
    )
    raise ApiError(
        status,
        "rateLimitExceeded",
        message,
        details=[
            {
                "@type": "type.googleapis.com/google.rpc.ErrorInfo",
                "reason": "RATE_LIMIT_EXCEEDED",
                "domain": "googleapis.com",
                "metadata": {
                    "service": api,
                    "consumer": f"projects/{project['project_number']}",
                    "quota_limit_value": str(rule["per_second"]),
                },
            }
        ],
        frontend=True,
    )
