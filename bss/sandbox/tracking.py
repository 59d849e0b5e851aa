"""Records that note their own changes: the state file's journal then writes what a call changed
without looking at what it did not.

Every collection of the State is a ``Collection``; after each call the ``Tracker`` *adopts* the
records the call touched, turning their dicts and lists (nested ones too) into
``TrackedDict``/``TrackedList``, which mark their record's (collection, key) on every change.
A record a handler builds is a plain dict until the end of the call that stores it; storing it
marks its key, so whatever happens to it before then is still written. Reads are plain dict and
list reads; ``copy.deepcopy`` and ``copy.copy`` give plain dicts and lists.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Hashable, Iterable, Mapping
from typing import Any

#: Stand-in for "no such key", distinct from a stored None.
MISSING: Any = object()


class Owner:
    """The (collection, key) places one record is stored at; shared by all its containers."""

    __slots__ = ("keys", "tracker")

    def __init__(self, tracker: Tracker) -> None:
        self.tracker = tracker
        self.keys: set[tuple[str, Hashable]] = set()

    def touch(self) -> None:
        for name, key in self.keys:
            self.tracker.mark(name, key)


class TrackedDict(dict):
    """A dict inside a stored record: every change marks the record changed."""

    __slots__ = ("_owner",)
    _owner: Owner

    def __setitem__(self, key: Any, value: Any) -> None:
        dict.__setitem__(self, key, value)
        self._owner.touch()

    def __delitem__(self, key: Any) -> None:
        dict.__delitem__(self, key)
        self._owner.touch()

    def __ior__(self, other: Any) -> TrackedDict:  # type: ignore[misc]
        dict.update(self, other)
        self._owner.touch()
        return self

    def pop(self, *args: Any) -> Any:
        value = dict.pop(self, *args)
        self._owner.touch()
        return value

    def popitem(self) -> tuple[Any, Any]:
        item = dict.popitem(self)
        self._owner.touch()
        return item

    def clear(self) -> None:
        dict.clear(self)
        self._owner.touch()

    def update(self, *args: Any, **kwargs: Any) -> None:
        dict.update(self, *args, **kwargs)
        self._owner.touch()

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            dict.__setitem__(self, key, default)
            self._owner.touch()
        return dict.__getitem__(self, key)

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        out: dict = {}
        memo[id(self)] = out
        for key, value in dict.items(self):
            out[key] = copy.deepcopy(value, memo)
        return out

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(self),))


class TrackedList(list):
    """A list inside a stored record: every change marks the record changed."""

    __slots__ = ("_owner",)
    _owner: Owner

    def __setitem__(self, index: Any, value: Any) -> None:
        list.__setitem__(self, index, value)
        self._owner.touch()

    def __delitem__(self, index: Any) -> None:
        list.__delitem__(self, index)
        self._owner.touch()

    def __iadd__(self, other: Iterable) -> TrackedList:  # type: ignore[misc]
        list.extend(self, other)
        self._owner.touch()
        return self

    def __imul__(self, n: Any) -> TrackedList:  # type: ignore[misc]
        list.__imul__(self, n)
        self._owner.touch()
        return self

    def append(self, value: Any) -> None:
        list.append(self, value)
        self._owner.touch()

    def extend(self, values: Iterable) -> None:
        list.extend(self, values)
        self._owner.touch()

    def insert(self, index: Any, value: Any) -> None:
        list.insert(self, index, value)
        self._owner.touch()

    def pop(self, *args: Any) -> Any:
        value = list.pop(self, *args)
        self._owner.touch()
        return value

    def remove(self, value: Any) -> None:
        list.remove(self, value)
        self._owner.touch()

    def clear(self) -> None:
        list.clear(self)
        self._owner.touch()

    def sort(self, *args: Any, **kwargs: Any) -> None:
        list.sort(self, *args, **kwargs)
        self._owner.touch()

    def reverse(self) -> None:
        list.reverse(self)
        self._owner.touch()

    def __copy__(self) -> list:
        return list(self)

    def __deepcopy__(self, memo: dict) -> list:
        out: list = []
        memo[id(self)] = out
        out.extend(copy.deepcopy(value, memo) for value in self)
        return out

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (list, (list(self),))


TRACKED = (TrackedDict, TrackedList)


def _release(value: Any, place: tuple[str, Hashable]) -> None:
    """``value`` no longer sits at ``place``: its changes stop marking that key."""
    if isinstance(value, TRACKED):
        value._owner.keys.discard(place)


class Collection(dict):
    """One of the State's collections (key -> record); setting or removing a key marks it."""

    __slots__ = ("name", "tracker")

    def __init__(self, name: str, tracker: Tracker, records: Mapping | None = None) -> None:
        super().__init__()
        self.name = name
        self.tracker = tracker
        if records:
            dict.update(self, records)

    def __setitem__(self, key: Any, value: Any) -> None:
        old = dict.get(self, key, MISSING)
        if old is not value:
            _release(old, (self.name, key))
        dict.__setitem__(self, key, value)
        self.tracker.mark(self.name, key)

    def __delitem__(self, key: Any) -> None:
        _release(dict.pop(self, key), (self.name, key))
        self.tracker.mark(self.name, key)

    def pop(self, key: Any, *default: Any) -> Any:
        if key not in self:
            return dict.pop(self, key, *default)
        value = dict.pop(self, key)
        _release(value, (self.name, key))
        self.tracker.mark(self.name, key)
        return value

    def popitem(self) -> tuple[Any, Any]:
        key, value = dict.popitem(self)
        _release(value, (self.name, key))
        self.tracker.mark(self.name, key)
        return key, value

    def clear(self) -> None:
        for key in list(self):
            del self[key]

    def update(self, *args: Any, **kwargs: Any) -> None:
        for key, value in dict(*args, **kwargs).items():
            self[key] = value

    def __ior__(self, other: Any) -> Collection:  # type: ignore[misc]
        self.update(other)
        return self

    def setdefault(self, key: Any, default: Any = None) -> Any:
        if key not in self:
            self[key] = default
        else:
            # The caller may change the record it gets back (delegations do).
            self.tracker.mark(self.name, key)
        return dict.__getitem__(self, key)

    def __copy__(self) -> dict:
        return dict(self)

    def __deepcopy__(self, memo: dict) -> dict:
        return {key: copy.deepcopy(value, memo) for key, value in dict.items(self)}

    def __reduce_ex__(self, protocol: Any) -> Any:
        return (dict, (dict(self),))


def _convert(value: Any, owner: Owner) -> Any:
    """``value`` with all its dicts and lists tracked for ``owner`` (new objects for plain ones)."""
    if isinstance(value, dict):
        if type(value) is not TrackedDict:
            fresh = TrackedDict()
            dict.update(fresh, value)
            value = fresh
        value._owner = owner
        swaps = []
        for key, item in dict.items(value):
            if isinstance(item, dict | list):
                converted = _convert(item, owner)
                if converted is not item:
                    swaps.append((key, converted))
        for key, converted in swaps:
            dict.__setitem__(value, key, converted)
        return value
    if isinstance(value, list):
        if type(value) is not TrackedList:
            fresh_list = TrackedList()
            list.extend(fresh_list, value)
            value = fresh_list
        value._owner = owner
        for i, item in enumerate(value):
            if isinstance(item, dict | list):
                converted = _convert(item, owner)
                if converted is not item:
                    list.__setitem__(value, i, converted)
        return value
    return value


class Index:
    """Keys of one collection by a value derived from each record (a top-level field), kept
    current from the tracker's marks: a lookup costs the keys changed since the last one."""

    def __init__(self, collection: str, derive: Callable[[Any], Hashable]) -> None:
        self.collection = collection
        self.derive = derive
        self.keys_by_value: dict[Hashable, set] = {}
        self.value_of: dict[Hashable, Hashable] = {}
        self.pending: set = set()

    def keys(self, records: Mapping, value: Hashable) -> set:
        """The keys whose record derives ``value`` (do not change the set)."""
        if self.pending:
            self._catch_up(records)
        return self.keys_by_value.get(value, set())

    def rebuild(self, records: Mapping) -> None:
        self.keys_by_value.clear()
        self.value_of.clear()
        self.pending = set(records)

    def _catch_up(self, records: Mapping) -> None:
        unadopted = set()
        for key in self.pending:
            old = self.value_of.pop(key, MISSING)
            if old is not MISSING:
                holders = self.keys_by_value[old]
                holders.discard(key)
                if not holders:
                    del self.keys_by_value[old]
            record = records.get(key, MISSING)
            if record is MISSING:
                continue
            value = self.derive(record)
            self.value_of[key] = value
            self.keys_by_value.setdefault(value, set()).add(key)
            if not isinstance(record, TRACKED):
                # A plain record's changes are not marked: derive it again next time.
                unadopted.add(key)
        self.pending = unadopted


class Tracker:
    """Which (collection, key)s changed: since the last adoption, and since the last write."""

    def __init__(self) -> None:
        self.changed: set[tuple[str, Hashable]] = set()
        self.unwritten: set[tuple[str, Hashable]] = set()
        self.indexes: dict[str, list[Index]] = {}

    def mark(self, name: str, key: Hashable) -> None:
        self.changed.add((name, key))
        for index in self.indexes.get(name, ()):
            index.pending.add(key)

    def add_index(self, index: Index) -> Index:
        self.indexes.setdefault(index.collection, []).append(index)
        return index

    def collection(self, name: str, records: Mapping | None = None) -> Collection:
        """A collection of records as loaded (all adopted now; nothing marked)."""
        made = Collection(name, self, records)
        for key, value in dict.items(made):
            self._adopt(made, key, value)
        for index in self.indexes.get(name, ()):
            index.rebuild(made)
        return made

    def replace(self, old: Mapping | None, new: Collection) -> None:
        """A handler set a whole collection anew: mark the keys whose record differs."""
        name = new.name
        old = old or {}
        for key, value in old.items():
            if dict.get(new, key, MISSING) is not value:
                _release(value, (name, key))
                self.mark(name, key)
        for key, value in dict.items(new):
            if old.get(key, MISSING) is not value:
                self.mark(name, key)

    def forget(self) -> None:
        """Everything was replaced wholesale (a reset or a load): nothing left to write."""
        self.changed.clear()
        self.unwritten.clear()

    def adopt(self, collections: Mapping[str, Collection]) -> None:
        """Track the records changed since the last adoption (their plain parts become tracked)."""
        for name, key in self.changed:
            records = collections[name]
            value = dict.get(records, key, MISSING)
            if isinstance(value, dict | list):
                self._adopt(records, key, value)
        self.unwritten |= self.changed
        self.changed.clear()

    def _adopt(self, records: Collection, key: Hashable, value: Any) -> None:
        if not isinstance(value, dict | list):
            return
        owner = value._owner if isinstance(value, TRACKED) else Owner(self)
        owner.keys.add((records.name, key))
        converted = _convert(value, owner)
        if converted is not value:
            dict.__setitem__(records, key, converted)
