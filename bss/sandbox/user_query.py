"""users.list's search: ``query``, ``orderBy``/``sortOrder``, ``showDeleted`` and ``viewType``.

The syntax is the one Google's "Search for users" guide documents: clauses ``field:value`` or
``field=value`` separated by spaces and ANDed, values in single quotes when they hold spaces
(``\\'`` is a quote inside one), ``:{PREFIX}*`` on email, givenName and familyName, and a bare
word compared with givenName, familyName and email. Google answers a query it cannot read with
400 ``invalid`` "Invalid Input: query" (google-api-java-client issue #1020 quotes the body).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass

from bss.sandbox.errors import ApiError

QUERY_ERROR = "Invalid Input: query"

#: Boolean fields (operator ``=`` only) and the user record's key behind each.
BOOLEAN_FIELDS = {
    "isAdmin": "isAdmin",
    "isDelegatedAdmin": "isDelegatedAdmin",
    "isSuspended": "suspended",
    "isArchived": "archived",
    "isEnrolledIn2Sv": "isEnrolledIn2Sv",
    "isEnforcedIn2Sv": "isEnforcedIn2Sv",
}
#: String fields the sandbox's users hold, with the operators Google allows on each.
TEXT_FIELDS = {
    "name": "=:",
    "email": "=:*",
    "givenName": "=:*",
    "familyName": "=:*",
    "orgUnitPath": "=",
}
#: Fields Google documents that no sandbox user has a value for: a clause on one matches nobody.
UNHELD_FIELDS = {
    "im": "=:",
    "externalId": "=:",
    "manager": "=",
    "managerId": "=",
    "directManager": "=",
    "directManagerId": "=",
    "address": ":",
    "addressPoBox": "=:",
    "addressExtended": "=:",
    "addressStreet": "=:",
    "addressLocality": "=:",
    "addressRegion": "=:",
    "addressPostalCode": "=:",
    "addressCountry": "=:",
    "orgName": "=:",
    "orgTitle": "=:",
    "orgDepartment": "=:",
    "orgDescription": "=:",
    "orgCostCenter": "=:",
    "phone": "=",
}
#: orderBy values and the sort key of each.
ORDER_KEYS: dict[str, Callable[[dict], str]] = {
    "email": lambda u: u["primaryEmail"],
    "givenName": lambda u: u["name"]["givenName"].casefold(),
    "familyName": lambda u: u["name"]["familyName"].casefold(),
}
SORT_ORDERS = ("ASCENDING", "DESCENDING")
VIEW_TYPES = ("admin_view", "domain_public")
#: What a domain_public view shows of a user (Google's public profile fields).
PUBLIC_KEYS = (
    "kind",
    "id",
    "etag",
    "primaryEmail",
    "name",
    "emails",
    "thumbnailPhotoUrl",
    "thumbnailPhotoEtag",
)

_FIELD = re.compile(r"([A-Za-z][A-Za-z0-9_.]*)([=:])")
_WORD = re.compile(r"[0-9a-z]+")


def _invalid(message: str = QUERY_ERROR) -> ApiError:
    return ApiError(400, "invalid", message)


@dataclass(frozen=True)
class Clause:
    """One search clause: ``field`` ('' for a bare word), operator, value, and a trailing *."""

    field: str
    op: str
    value: str
    prefix: bool


def _read_value(query: str, i: int) -> tuple[str, int]:
    """The value starting at ``i`` (quoted parts joined, ``\\'`` unescaped) and where it ends."""
    out: list[str] = []
    while i < len(query) and not query[i].isspace():
        if query[i] in "'\"":
            quote, i = query[i], i + 1
            while True:
                if i >= len(query):
                    raise _invalid()  # an unclosed quote
                if query[i] == "\\" and i + 1 < len(query):
                    out.append(query[i + 1])
                    i += 2
                elif query[i] == quote:
                    i += 1
                    break
                else:
                    out.append(query[i])
                    i += 1
        else:
            out.append(query[i])
            i += 1
    return "".join(out), i


def parse(query: str) -> list[Clause]:
    """The clauses of a users.list query; 400 for one Google would not read."""
    clauses: list[Clause] = []
    i = 0
    while i < len(query):
        if query[i].isspace():
            i += 1
            continue
        match = _FIELD.match(query, i)
        field, op = (match.group(1), match.group(2)) if match else ("", ":")
        value, i = _read_value(query, match.end() if match else i)
        prefix = value.endswith("*")
        if prefix:
            value = value[:-1]
        if "*" in value or (match and not value and not prefix):
            raise _invalid()
        clauses.append(Clause(field, op, value, prefix))
    for clause in clauses:
        _check(clause)
    return clauses


def _check(clause: Clause) -> None:
    """400 for a field Google does not search, or an operator (or *) it does not allow there."""
    if clause.field == "":
        return
    if clause.field in BOOLEAN_FIELDS:
        if clause.op != "=" or clause.prefix or clause.value.lower() not in ("true", "false"):
            raise _invalid()
        return
    allowed = TEXT_FIELDS.get(clause.field) or UNHELD_FIELDS.get(clause.field)
    if allowed is None or clause.op not in allowed:
        # includes custom-schema fields (Schema.field): the sandbox has no schemas
        raise _invalid()
    if clause.prefix and (clause.op != ":" or "*" not in allowed):
        raise _invalid()


def _words(text: str) -> list[str]:
    return _WORD.findall(text.casefold())


def _contains(text: str, value: str, prefix: bool) -> bool:
    """``:``: the value's words appear in the text's words, in order; with *, the last one
    as the start of a word (Google's search is by word, not by substring)."""
    have, want = _words(text), _words(value)
    if not want:
        return prefix  # a bare "*" matches everything
    for start in range(len(have) - len(want) + 1):
        window = have[start : start + len(want)]
        if window[:-1] == want[:-1] and (
            window[-1].startswith(want[-1]) if prefix else window[-1] == want[-1]
        ):
            return True
    return False


def _texts(user: dict, field: str) -> list[str]:
    name = user.get("name") or {}
    if field == "name":
        return [f"{name.get('givenName', '')} {name.get('familyName', '')}".strip()]
    if field == "email":
        addresses = [e.get("address", "") for e in user.get("emails") or []]
        return [user["primaryEmail"], *addresses, *(user.get("aliases") or [])]
    if field in ("givenName", "familyName"):
        return [name.get(field, "")]
    if field == "orgUnitPath":
        return [user.get("orgUnitPath") or "/"]
    return []


def _in_unit(path: str, unit: str) -> bool:
    """orgUnitPath=X matches X and the units below it (GAM filters children itself when it
    wants only X), case-insensitively."""
    path, unit = path.casefold().rstrip("/") or "/", unit.casefold().rstrip("/") or "/"
    return unit == "/" or path == unit or path.startswith(unit + "/")


def _matches(user: dict, clause: Clause) -> bool:
    if clause.field == "":
        texts = [*_texts(user, "givenName"), *_texts(user, "familyName"), *_texts(user, "email")]
        return any(_contains(t, clause.value, clause.prefix) for t in texts)
    if clause.field in BOOLEAN_FIELDS:
        held = bool(user.get(BOOLEAN_FIELDS[clause.field]))
        return held == (clause.value.lower() == "true")
    texts = _texts(user, clause.field)
    if clause.field == "orgUnitPath":
        return any(_in_unit(t, clause.value) for t in texts)
    if clause.op == "=":
        return any(t.casefold() == clause.value.casefold() for t in texts)
    return any(_contains(t, clause.value, clause.prefix) for t in texts)


def search(
    users: Iterable[dict],
    *,
    query: str | None,
    order_by: str | None,
    sort_order: str | None,
    show_deleted: str | None,
) -> list[dict]:
    """The users a users.list call answers with, in its order (all checks before any match)."""
    clauses = parse(query or "")
    if order_by is not None and order_by not in ORDER_KEYS:
        raise _invalid("Invalid Input")
    if sort_order is not None and sort_order.upper() not in SORT_ORDERS:
        raise _invalid("Invalid Input")
    if (show_deleted or "").lower() == "true":
        # Deleted users are gone from the sandbox at once (Google keeps them 20 days).
        return []
    chosen = [u for u in users if all(_matches(u, c) for c in clauses)]
    key = ORDER_KEYS[order_by or "email"]
    descending = (sort_order or "").upper() == "DESCENDING"
    return sorted(chosen, key=lambda u: (key(u), u["primaryEmail"]), reverse=descending)


def view_type(raw: str | None) -> str:
    """admin_view (the default) or domain_public; 400 for anything else."""
    if raw is None or raw == "":
        return "admin_view"
    if raw not in VIEW_TYPES:
        raise _invalid("Invalid Input")
    return raw


def public_view(view: dict) -> dict:
    """A user as the domain_public view shows it."""
    return {k: view[k] for k in PUBLIC_KEYS if k in view}
