"""googleapiclient's collections, made once per client rather than at every call."""

from __future__ import annotations

from typing import Any


class Collections:
    """A discovery-built client whose collections (`svc.customers()`, `svc.users()`, ...) are
    made once, not on every call: googleapiclient builds a new Resource, with every method of
    the collection, each time one is asked for. Methods (`.get(...)`) pass straight through."""

    def __init__(self, resource: Any) -> None:
        self._resource = resource
        self._made: dict[str, Collections] = {}

    def __getattr__(self, name: str) -> Any:
        attr = getattr(self._resource, name)
        if not getattr(attr, "__is_resource__", False):
            return attr

        def collection() -> Collections:
            if name not in self._made:
                self._made[name] = Collections(attr())
            return self._made[name]

        return collection
