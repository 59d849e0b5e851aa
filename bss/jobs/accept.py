"""Accepting jobs: validate, write the row, and only after commit send the message."""

from __future__ import annotations

import copy
import hashlib
import hmac
import json
import logging
from collections.abc import Callable, Sequence
from typing import Any

from pydantic import BaseModel, SecretStr
from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, select

from bss.crypto import Vault
from bss.errors import (
    ConfigurationError,
    IdempotencyConflict,
    InvalidState,
    NotFound,
    ValidationFailed,
)
from bss.jobs.fairness import admit
from bss.models import (
    Distributor,
    Instance,
    Job,
    JobSecret,
    JobState,
    add_event,
    saved_id,
    utcnow,
)
from bss.operations import Operation, get_operation
from bss.settings import Settings, get_settings

log = logging.getLogger(__name__)

SECRET_MARK = "<secret>"  # noqa: S105 (a placeholder shown instead of a secret)

Sender = Callable[[str], None]


def request_hash(body: dict[str, Any]) -> str:
    """A stable digest of a request body, to tell a replay from a different request."""
    canonical = json.dumps(body, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode()).hexdigest()


def submit_job(
    session: Session,
    *,
    distributor: Distributor,
    instance_name: str,
    operation: str,
    params: dict[str, Any],
    external_ref: str | None = None,
    idempotency_key: str | None = None,
    vault: Vault | None = None,
) -> tuple[Job, bool]:
    """Validate and record a job (state queued). Returns (job, created).

    The same Idempotency-Key with the same body returns the first job; with another body it is
    refused. The caller commits, then sends the message (`dispatch`).
    """
    op_or_none = _operation_or_none(operation)
    digest = request_digest(
        instance_name=instance_name,
        operation=operation,
        params=params,
        external_ref=external_ref,
        secret_fields=op_or_none.secret_fields if op_or_none else (),
    )
    if idempotency_key:
        existing = replay_of(
            session,
            distributor_id=saved_id(distributor),
            idempotency_key=idempotency_key,
            instance_name=instance_name,
            operation=operation,
            params=params,
            external_ref=external_ref,
            vault=vault,
        )
        if existing is not None:
            return existing, False
    op = get_operation(operation)
    validated = op.validate(params)
    secrets = {path: value for path in op.secret_fields if (value := secret_at(validated, path))}
    if secrets and vault is None:
        raise ConfigurationError("A job with secrets needs the vault to encrypt them.")
    instance = session.exec(
        select(Instance).where(
            Instance.distributor_id == distributor.id, Instance.name == instance_name
        )
    ).first()
    if instance is None:
        raise NotFound(
            f"No instance named {instance_name!r}.",
            details=[{"field": "instance", "problem": "no such instance"}],
        )
    job = Job(
        distributor_id=saved_id(distributor),
        instance_id=saved_id(instance),
        operation=op.name,
        params=redact(validated.model_dump(mode="json", exclude_none=True), op.secret_fields),
        external_ref=external_ref,
        idempotency_key=idempotency_key,
        request_hash=digest,
    )
    session.add(job)
    try:
        session.flush()
    except IntegrityError:
        # Another request with the same key won the race: answer as its replay.
        session.rollback()
        existing = _by_idempotency_key(session, distributor.id, idempotency_key or "")
        if existing is None:
            raise
        return _replay(existing, digest), False
    for path, value in secrets.items():
        assert vault is not None
        session.add(JobSecret(job_id=job.id, name=path, value_enc=vault.encrypt(value)))
    add_event(session, job.id, "state", "Accepted", state=JobState.QUEUED)
    return job, True


def request_digest(
    *,
    instance_name: str,
    operation: str,
    params: Any,
    external_ref: str | None,
    secret_fields: Sequence[str],
) -> str:
    """The digest of a request, to tell a replay of an Idempotency-Key from another request."""
    body = {
        "instance": instance_name,
        "operation": operation,
        # Secrets are compared separately (decrypted), never hashed: a hash of a short password
        # next to known fields could be brute-forced.
        "params": redact(params, secret_fields)
        if secret_fields and isinstance(params, dict)
        else params,
        "external_ref": external_ref,
    }
    return request_hash(body)


def replay_of(
    session: Session,
    *,
    distributor_id: int,
    idempotency_key: str,
    instance_name: str,
    operation: str,
    params: Any,
    external_ref: str | None,
    vault: Vault | None,
) -> Job | None:
    """The job first accepted with this Idempotency-Key when this request repeats it (None: the
    key is new); IdempotencyConflict when its body or a secret differs."""
    existing = _by_idempotency_key(session, distributor_id, idempotency_key)
    if existing is None:
        return None
    op = _operation_or_none(operation)
    secret_fields = op.secret_fields if op else ()
    _same_secrets(session, existing, params, secret_fields, vault)
    digest = request_digest(
        instance_name=instance_name,
        operation=operation,
        params=params,
        external_ref=external_ref,
        secret_fields=secret_fields,
    )
    return _replay(existing, digest)


def _operation_or_none(name: str) -> Operation | None:
    try:
        return get_operation(name)
    except ValidationFailed:
        return None


def redact(params: dict[str, Any], paths: Sequence[str]) -> dict[str, Any]:
    """`params` without the values at the secret `paths` (a mark says one was given)."""
    out = copy.deepcopy(params)
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = out
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        if isinstance(node, dict) and node.get(leaf) is not None:
            node[leaf] = SECRET_MARK
    return out


def secret_at(model: BaseModel, path: str) -> str | None:
    """The plaintext of the secret at `path` in validated params, if given."""
    node: Any = model
    for part in path.split("."):
        node = getattr(node, part, None)
    if isinstance(node, SecretStr):
        return node.get_secret_value()
    return node if isinstance(node, str) else None


def with_secrets(
    params: dict[str, Any], secrets: dict[str, str], paths: Sequence[str] = ()
) -> dict[str, Any]:
    """The stored params with their secrets put back (in memory only, for a worker).

    A secret mark whose secret is gone is dropped, so it can never pass for the secret.
    """
    out = copy.deepcopy(params)
    for path in {*paths, *secrets}:
        *parents, leaf = path.split(".")
        node: Any = out
        for part in parents:
            node = node.setdefault(part, {}) if isinstance(node, dict) else None
        if not isinstance(node, dict):
            continue
        if path in secrets:
            node[leaf] = secrets[path]
        elif node.get(leaf) == SECRET_MARK:
            del node[leaf]
    return out


def _same_secrets(
    session: Session,
    existing: Job,
    params: Any,
    paths: Sequence[str],
    vault: Vault | None,
) -> None:
    """A replay must carry the same secrets as the first request (while they are kept)."""
    if not paths or not isinstance(params, dict) or vault is None:
        return
    kept = {
        s.name: s.value_enc
        for s in session.exec(select(JobSecret).where(JobSecret.job_id == existing.id)).all()
    }
    for path in paths:
        *parents, leaf = path.split(".")
        node: Any = params
        for part in parents:
            node = node.get(part) if isinstance(node, dict) else None
        given = node.get(leaf) if isinstance(node, dict) else None
        if (
            path in kept
            and isinstance(given, str)
            and not hmac.compare_digest(vault.decrypt(kept[path]).encode(), given.encode())
        ):
            raise _conflict(existing)


def _by_idempotency_key(session: Session, distributor_id: int | None, key: str) -> Job | None:
    return session.exec(
        select(Job).where(Job.distributor_id == distributor_id, Job.idempotency_key == key)
    ).first()


def _conflict(existing: Job) -> IdempotencyConflict:
    return IdempotencyConflict(
        "This Idempotency-Key was already used with a different request body "
        f"(job {existing.id}). Use a new key for a new request.",
        details=[{"field": "Idempotency-Key", "problem": "reused with a different body"}],
    )


def _replay(existing: Job, digest: str) -> Job:
    if existing.request_hash != digest:
        raise _conflict(existing)
    return existing


def dispatch(session: Session, job: Job, send: Sender, *, settings: Settings | None = None) -> bool:
    """Send the job's message (after its row is committed) and note when, or hold it back while
    its distributor has its share of the workers (bss.jobs.fairness); commits.

    False when the broker could not be reached: the job stays accepted (its row is the record)
    and the sweep sends it once the broker answers again.
    """
    return admit(session, settings or get_settings(), job, send)


def get_job(session: Session, *, distributor_id: int | None, job_id: str) -> Job:
    """A job of this distributor (None: any distributor, for operators), or NotFound."""
    job = session.get(Job, job_id)
    if job is None or (distributor_id is not None and job.distributor_id != distributor_id):
        raise NotFound(f"No job {job_id!r}.")
    return job


def reveal_secrets(session: Session, job: Job, vault: Vault) -> dict[str, str]:
    """Secrets meant for the billing system (a generated password), shown once then deleted."""
    if job.state not in (JobState.SUCCEEDED, JobState.FAILED):
        return {}
    shown = session.exec(
        select(JobSecret).where(JobSecret.job_id == job.id, JobSecret.reveal == True)  # noqa: E712
    ).all()
    out = {}
    for secret in shown:
        out[secret.name] = vault.decrypt(secret.value_enc)
        session.delete(secret)
    if out:
        add_event(session, job.id, "note", "Generated secrets delivered once and wiped")
    return out


def cancel_queued_job(session: Session, job: Job) -> Job:
    """Cancel a job that no worker has started (a conditional update: a worker may race us)."""
    now = utcnow()
    # exec, not execute: sqlmodel types exec's result of an UPDATE as a CursorResult (rowcount).
    done = session.exec(
        update(Job)
        .where(
            col(Job.id) == job.id,
            col(Job.state).in_([JobState.QUEUED, JobState.WAITING, JobState.WAITING_QUOTA]),
        )
        .values(state=JobState.CANCELLED, finished_at=now, updated_at=now)
    )
    if done.rowcount != 1:
        session.refresh(job)
        raise InvalidState(
            f"Job {job.id} is {job.state}; only a queued or waiting job can be cancelled."
        )
    for secret in session.exec(select(JobSecret).where(JobSecret.job_id == job.id)).all():
        session.delete(secret)
    add_event(session, job.id, "state", "Cancelled", state=JobState.CANCELLED)
    session.flush()
    session.refresh(job)
    return job
