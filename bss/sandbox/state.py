"""Everything "Google" holds, in memory, behind one lock; kept in a JSON snapshot + journal.

Persistence (``--state FILE``) and the lookups below cost what a call touches, not what the
state holds: see bss.sandbox.tracking (change marks, indexes) and bss.sandbox.journal (files).
"""

from __future__ import annotations

import json
import secrets
import string
import threading
from collections import deque
from collections.abc import Iterator
from collections.abc import Set as AbstractSet
from typing import Any

from flask import current_app

from bss.sandbox.clock import Clock
from bss.sandbox.journal import Journal
from bss.sandbox.tracking import Collection, Index, Tracker

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
    "watches",  # reseller domain -> {topic, service_accounts} (resellernotify.register)
    "pubsub_subscriptions",  # projects/<p>/subscriptions/<s> -> Pub/Sub subscription
    "pubsub_messages",  # "<subscription>|<messageId>" -> a message not yet acknowledged
)

#: How many calls the call log keeps.
CALL_LOG_SIZE = 2000


def _lower(value: Any) -> str:
    return str(value or "").lower()


class State:
    """Google's side of the world; mutate it only while holding ``lock``.

    The COLLECTIONS are ``tracking.Collection`` dicts; setting one (``state.licenses = {...}``)
    is fine: the new dict becomes a Collection and the keys that differ are marked changed.
    """

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
    watches: dict[str, dict]
    pubsub_subscriptions: dict[str, dict]
    pubsub_messages: dict[str, dict]

    def __init__(self, *, state_file: str | None = None) -> None:
        self.lock = threading.RLock()
        self.clock = Clock()
        self.state_file = state_file
        self.signing_key: dict[str, str] | None = None
        self._journal = Journal(state_file) if state_file else None
        self._tracker = tracker = Tracker()
        self._by_domain = tracker.add_index(
            Index("customers", lambda c: _lower(c.get("customerDomain")))
        )
        self._by_reseller = tracker.add_index(Index("customers", lambda c: c.get("_reseller")))
        self._users_by_id = tracker.add_index(Index("users", lambda u: u.get("id")))
        self._subscriptions_by_customer = tracker.add_index(
            Index("subscriptions", lambda s: s.get("customerId"))
        )
        self._licenses_by_customer = tracker.add_index(
            Index("licenses", lambda v: v.get("_customer"))
        )
        #: The fields outside the collections, as last written to the journal.
        self._written_extras = ""
        self._compact_due = False
        self.reset()

    def __setattr__(self, name: str, value: Any) -> None:
        if name in COLLECTIONS:
            old = self.__dict__.get(name)
            if value is old:
                return
            made = Collection(name, self._tracker, value)
            self._tracker.replace(old, made)
            value = made
        object.__setattr__(self, name, value)

    def _install(self, data: dict[str, Any]) -> None:
        """Make the collections the records in ``data`` (by name), tracked, marking nothing."""
        for name in COLLECTIONS:
            object.__setattr__(self, name, self._tracker.collection(name, data.get(name) or {}))
        self._tracker.forget()
        self._compact_due = True

    def reset(self) -> None:
        """Forget everything except the OIDC signing key."""
        self._install({})
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
        found = self._by_domain.keys(self.customers, key.lower())
        return self.customers[min(found)] if found else None

    def user(self, key: str) -> dict | None:
        """A Directory user by primary email (case-insensitive) or by id, or None."""
        found = self.users.get(key.lower())
        if found:
            return found
        emails = self._users_by_id.keys(self.users, key)
        return self.users[min(emails)] if emails else None

    def subscriptions_of(self, customer_id: str) -> list[dict]:
        """The customer's subscriptions, oldest first."""
        keys = self._subscriptions_by_customer.keys(self.subscriptions, customer_id)
        return sorted((self.subscriptions[k] for k in keys), key=lambda s: s.get("_seq", 0))

    def licenses_of(self, customer_id: str) -> list[dict]:
        """The license assignments of the customer's users."""
        keys = self._licenses_by_customer.keys(self.licenses, customer_id)
        return [self.licenses[k] for k in sorted(keys)]

    def reseller_of(self, email: str) -> dict | None:
        """The reseller whose super admin ``email`` is, or None."""
        user = self.users.get(email.lower())
        if not user or not user.get("isAdmin"):
            return None
        for reseller in self.resellers.values():
            if reseller["customer_id"] == user["customerId"]:
                return reseller
        return None

    def administered_customers(self, email: str) -> AbstractSet[str]:
        """Ids of the customers ``email`` may administer: its reseller's, and its own if admin.

        A set answering ``in`` without listing them (a reseller may have thousands).
        """
        reseller = self.reseller_of(email)
        user = self.users.get(email.lower())
        return Administered(
            self,
            reseller["domain"] if reseller else None,
            user["customerId"] if user and user.get("isAdmin") else None,
        )

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
        self._install(data)
        self.clock.offset = float(data.get("clock_offset", 0.0))
        self.counter = int(data.get("counter", 0))
        self.signing_key = data.get("signing_key") or self.signing_key

    def _extras(self) -> str:
        """The fields of to_json() outside the collections, as JSON."""
        data = self.to_json()
        return json.dumps({k: v for k, v in data.items() if k not in COLLECTIONS})

    def commit(self, *, write: bool = True) -> None:
        """Track what changed since the last commit and (``write``) append it to the journal.

        Called after each call, before its answer is sent: an answered change is in the file.
        """
        with self.lock:
            collections = {name: getattr(self, name) for name in COLLECTIONS}
            self._tracker.adopt(collections)
            if self._journal is None:
                self._tracker.forget()
                return
            if not write:
                return
            if self._compact_due or self._journal.due():
                self.save()
                return
            line: dict[str, Any] = {}
            for name, key in self._tracker.unwritten:
                records = collections[name]
                if key in records:
                    line.setdefault("set", {}).setdefault(name, {})[key] = records[key]
                else:
                    line.setdefault("del", {}).setdefault(name, []).append(key)
            extras = self._extras()
            if extras != self._written_extras:
                line["x"] = json.loads(extras)
            if line:
                self._journal.append(line)
            self._tracker.unwritten.clear()
            self._written_extras = extras

    def save(self) -> None:
        """Compact: write the whole state as the snapshot and empty the journal (if a file)."""
        if self._journal is None:
            return
        # Held while writing too, so an older snapshot never replaces a newer one.
        with self.lock:
            self._tracker.adopt({name: getattr(self, name) for name in COLLECTIONS})
            self._journal.compact(json.dumps(self.to_json(), separators=(",", ":")))
            self._tracker.forget()
            self._written_extras = self._extras()
            self._compact_due = False

    def load(self) -> None:
        """Read the state file and replay its journal, if there is one; then compact them."""
        if self._journal is None:
            return
        with self.lock:
            data = self._journal.read()
            if data is not None:
                self.load_json(data)
            self.save()


class Administered(AbstractSet[str]):
    """The ids of a reseller's customers, plus one more, answering ``in`` from the record."""

    def __init__(self, state: State, reseller: str | None, own: str | None) -> None:
        self.state, self.reseller, self.own = state, reseller, own

    def __contains__(self, customer_id: object) -> bool:
        if customer_id == self.own and customer_id is not None:
            return True
        customer = self.state.customers.get(customer_id)  # type: ignore[call-overload]
        return (
            self.reseller is not None
            and customer is not None
            and customer.get("_reseller") == self.reseller
        )

    def _ids(self) -> set[str]:
        state = self.state
        ids = (
            set(state._by_reseller.keys(state.customers, self.reseller)) if self.reseller else set()
        )
        if self.own is not None:
            ids.add(self.own)
        return ids

    def __iter__(self) -> Iterator[str]:
        return iter(self._ids())

    def __len__(self) -> int:
        return len(self._ids())


def current_state() -> State:
    """The State of the app handling the current request."""
    return current_app.extensions["sandbox"]
