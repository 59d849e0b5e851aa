"""Everything "Google" holds, in memory, behind one lock; saved to and loaded from JSON."""

from __future__ import annotations

import json
import os
import secrets
import string
import tempfile
import threading
from collections import deque
from typing import Any

from flask import current_app

from bss.sandbox.clock import Clock

#: Collections that make up Google's side; each maps a key to a JSON-able record.
COLLECTIONS = (
    "resellers",  # domain -> reseller
    "projects",  # project_id -> Cloud project
    "clients",  # client_id -> OAuth client (web) or service account
    "delegations",  # domain -> {client_id: [scopes]} (domain-wide delegation)
    "grants",  # "user|client_id" -> [scopes] the user consented to
    "refresh_tokens",  # token -> record
    "access_tokens",  # token -> record
    "codes",  # authorization code -> record
    "customers",  # customerId -> customer
    "subscriptions",  # subscriptionId -> subscription
    "users",  # lower-cased primaryEmail -> Directory user
    "licenses",  # "productId|skuId|userId" -> license assignment
    "mail",  # message id -> sent message
)

#: How many calls the call log keeps.
CALL_LOG_SIZE = 2000


class State:
    """Google's side of the world; mutate it only while holding ``lock``."""

    # The COLLECTIONS, set by reset() and load_json(); declared here for the type checker.
    resellers: dict[str, dict]
    projects: dict[str, dict]
    clients: dict[str, dict]
    delegations: dict[str, dict[str, list[str]]]
    grants: dict[str, list[str]]
    refresh_tokens: dict[str, dict]
    access_tokens: dict[str, dict]
    codes: dict[str, dict]
    customers: dict[str, dict]
    subscriptions: dict[str, dict]
    users: dict[str, dict]
    licenses: dict[str, dict]
    mail: dict[str, dict]

    def __init__(self, *, state_file: str | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.state_file = state_file
        self.signing_key: dict[str, str] | None = None
        self.reset()

    def reset(self) -> None:
        """Forget everything except the OIDC signing key."""
        for name in COLLECTIONS:
            setattr(self, name, {})
        self.calls: deque[dict] = deque(maxlen=CALL_LOG_SIZE)
        self.faults: list[dict] = []
        self.latency: list[dict] = []
        self.quotas: dict[str, dict] = {}
        self.quota_hits: dict[str, deque] = {}
        self.clock.offset = 0.0
        self.counter = 0

    # -- ids -------------------------------------------------------------------------------

    def next_number(self) -> int:
        self.counter += 1
        return self.counter

    @staticmethod
    def random_digits(n: int) -> str:
        return str(secrets.randbelow(9) + 1) + "".join(
            secrets.choice(string.digits) for _ in range(n - 1)
        )

    @staticmethod
    def random_token(n: int = 32) -> str:
        alphabet = string.ascii_letters + string.digits + "-_"
        return "".join(secrets.choice(alphabet) for _ in range(n))

    def new_customer_id(self) -> str:
        alphabet = string.ascii_lowercase + string.digits
        while True:
            cid = "C0" + "".join(secrets.choice(alphabet) for _ in range(7))
            if cid not in self.customers:
                return cid

    # -- lookups ---------------------------------------------------------------------------

    def customer(self, key: str) -> dict | None:
        """A customer by id or primary domain (case-insensitive), or None."""
        if key in self.customers:
            return self.customers[key]
        key = key.lower()
        for customer in self.customers.values():
            if customer["customerDomain"].lower() == key:
                return customer
        return None

    def user(self, key: str) -> dict | None:
        """A Directory user by primary email (case-insensitive) or by id, or None."""
        found = self.users.get(key.lower())
        if found:
            return found
        for user in self.users.values():
            if user["id"] == key:
                return user
        return None

    def reseller_of(self, email: str) -> dict | None:
        """The reseller whose super admin ``email`` is, or None."""
        user = self.users.get(email.lower())
        if not user or not user.get("isAdmin"):
            return None
        for reseller in self.resellers.values():
            if reseller["customer_id"] == user["customerId"]:
                return reseller
        return None

    def administered_customers(self, email: str) -> set[str]:
        """Ids of the customers ``email`` may administer: its reseller's, and its own if admin."""
        ids: set[str] = set()
        reseller = self.reseller_of(email)
        if reseller:
            ids.update(
                c["customerId"]
                for c in self.customers.values()
                if c.get("_reseller") == reseller["domain"]
            )
        user = self.users.get(email.lower())
        if user and user.get("isAdmin"):
            ids.add(user["customerId"])
        return ids

    def project_of_client(self, client_id: str) -> dict | None:
        client = self.clients.get(client_id)
        return self.projects.get(client["project"]) if client else None

    # -- persistence -----------------------------------------------------------------------

    def to_json(self) -> dict[str, Any]:
        data: dict[str, Any] = {name: getattr(self, name) for name in COLLECTIONS}
        data["clock_offset"] = self.clock.offset
        data["counter"] = self.counter
        data["signing_key"] = self.signing_key
        return data

    def load_json(self, data: dict[str, Any]) -> None:
        self.reset()
        for name in COLLECTIONS:
            setattr(self, name, data.get(name, {}))
        self.clock.offset = float(data.get("clock_offset", 0.0))
        self.counter = int(data.get("counter", 0))
        self.signing_key = data.get("signing_key") or self.signing_key

    def save(self) -> None:
        """Write the state file atomically, if there is one."""
        if not self.state_file:
            return
        directory = os.path.dirname(os.path.abspath(self.state_file))
        # Held while writing too, so an older snapshot never replaces a newer one.
        with self.lock:
            text = json.dumps(self.to_json(), indent=1, sort_keys=True)
            fd, tmp = tempfile.mkstemp(prefix=".sandbox-state-", dir=directory)
            try:
                with os.fdopen(fd, "w", encoding="utf-8") as f:
                    f.write(text)
                os.replace(tmp, self.state_file)
            except BaseException:
                if os.path.exists(tmp):
                    os.unlink(tmp)
                raise

    def load(self) -> None:
        """Read the state file, if there is one and it exists."""
        if self.state_file and os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as f:
                self.load_json(json.load(f))


def current_state() -> State:
    """The State of the app handling the current request."""
    return current_app.extensions["sandbox"]
