"""What the job engine keeps for a running job besides its checkpoint: secrets and mirrors."""

from __future__ import annotations

from typing import Any

from sqlmodel import select

from bss.crypto import Vault
from bss.db import session_scope
from bss.models import CustomerMirror, JobSecret, utcnow


class DbJobStore:
    """A job's secrets (encrypted with the vault) and the customer mirrors it writes."""

    def __init__(self, database_url: str, vault: Vault, *, job_id: str, instance_id: int) -> None:
        self.database_url = database_url
        self.vault = vault
        self.job_id = job_id
        self.instance_id = instance_id

    def secrets(self) -> dict[str, str]:
        """Every secret of the job, decrypted (for a worker's memory only)."""
        with session_scope(self.database_url) as s:
            rows = s.exec(select(JobSecret).where(JobSecret.job_id == self.job_id)).all()
            return {r.name: self.vault.decrypt(r.value_enc) for r in rows}

    def get_secret(self, name: str) -> str | None:
        """A secret of this job (decrypted), or None."""
        with session_scope(self.database_url) as s:
            row = s.exec(
                select(JobSecret).where(JobSecret.job_id == self.job_id, JobSecret.name == name)
            ).first()
            return self.vault.decrypt(row.value_enc) if row else None

    def put_secret(self, name: str, value: str, *, reveal: bool) -> None:
        """Keep a secret of this job, encrypted; `reveal`: show it once in the job's result."""
        with session_scope(self.database_url) as s:
            row = s.exec(
                select(JobSecret).where(JobSecret.job_id == self.job_id, JobSecret.name == name)
            ).first()
            row = row or JobSecret(job_id=self.job_id, name=name, value_enc="")
            row.value_enc = self.vault.encrypt(value)
            row.reveal = reveal
            s.add(row)

    def save_mirror(self, customer: dict[str, Any], **parts: list[Any]) -> None:
        """Store the local mirror of a customer read from Google."""
        with session_scope(self.database_url) as s:
            row = s.exec(
                select(CustomerMirror).where(
                    CustomerMirror.instance_id == self.instance_id,
                    CustomerMirror.customer_id == customer["customerId"],
                )
            ).first()
            row = row or CustomerMirror(
                instance_id=self.instance_id,
                customer_id=customer["customerId"],
                domain=customer.get("customerDomain", ""),
            )
            row.domain = customer.get("customerDomain", row.domain)
            row.customer = customer
            row.subscriptions = parts.get("subscriptions", [])
            row.users = parts.get("users", [])
            row.licenses = parts.get("licenses", [])
            row.synced_at = utcnow()
            # Google has just confirmed all of it, and still manages it for us
            row.confirmed_at, row.status = row.synced_at, "active"
            row.sync_job_id = self.job_id
            s.add(row)
