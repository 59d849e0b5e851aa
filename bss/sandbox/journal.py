"""The state file on disk: a JSON snapshot, and beside it a journal of the changes made since.

Each call that changed something appends one JSON line to ``FILE.journal`` before its answer
is sent: the records it set (``set``: collection -> key -> record), the keys it removed
(``del``: collection -> [key]) and, when they changed, the fields kept outside the collections
(``x``). A line holds a record's whole new value, so replaying a line twice does no harm.

The process writing the line may be killed right after: the write is in the OS's page cache by
then, which a killed process does not take with it (a power cut can; there is no fsync). A kill
during the write leaves a torn last line, which loading ignores: its call was not answered.

Compaction writes a fresh snapshot beside the old one, renames it over the old one, and only
then empties the journal; a kill between the two leaves a journal the new snapshot already
holds, and replaying it changes nothing. It runs at start, at shutdown, after a reset, and when
the journal has grown past the snapshot's size (so its cost per call stays flat as state grows).
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import tempfile
from typing import Any

log = logging.getLogger("bss.sandbox")

#: The journal is compacted once it is larger than this and than the snapshot.
MIN_COMPACT_BYTES = 64 * 1024


def journal_path(state_file: str) -> str:
    return state_file + ".journal"


def replay(data: dict[str, Any], line: dict[str, Any]) -> None:
    """Apply one journal line to the JSON form of the state."""
    for name, records in line.get("set", {}).items():
        target = data.get(name)
        if not isinstance(target, dict):
            target = data[name] = {}
        target.update(records)
    for name, keys in line.get("del", {}).items():
        target = data.get(name)
        if isinstance(target, dict):
            for key in keys:
                target.pop(key, None)
    data.update(line.get("x", {}))


class Journal:
    """Appends to ``FILE.journal`` and compacts it into ``FILE``."""

    def __init__(self, state_file: str) -> None:
        self.state_file = state_file
        self.path = journal_path(state_file)
        self.fd: int | None = None
        self.size = 0
        self.snapshot_size = 0
        self.broken = False

    def read(self) -> dict[str, Any] | None:
        """The snapshot with the journal replayed on it; None when there is neither."""
        data: dict[str, Any] | None = None
        if os.path.exists(self.state_file):
            with open(self.state_file, encoding="utf-8") as f:
                data = json.load(f)
        if not os.path.exists(self.path):
            return data
        data = data if data is not None else {}
        with open(self.path, "rb") as f:
            lines = f.read().split(b"\n")
        for number, raw in enumerate(lines, 1):
            if not raw.strip():
                continue
            try:
                line = json.loads(raw)
            except ValueError:
                # The last line is torn when the process died writing it; that call was never
                # answered. A bad line anywhere else is damage: say so, keep the rest.
                if number < len(lines):
                    log.warning("%s: line %d is not JSON; skipped", self.path, number)
                continue
            replay(data, line)
        return data

    def append(self, line: dict[str, Any]) -> None:
        """Write one line; it is in the OS's hands (and survives a kill) when this returns."""
        data = (json.dumps(line, separators=(",", ":")) + "\n").encode()
        fd = self._open()
        view = memoryview(data)
        try:
            while view:
                written = os.write(fd, view)
                self.size += written
                view = view[written:]
        except OSError:
            # Part of the line may be written (a full disk): the next commit compacts instead.
            self.broken = True
            raise

    def due(self) -> bool:
        """Whether the journal has grown enough to fold it into the snapshot."""
        return self.broken or self.size > max(MIN_COMPACT_BYTES, self.snapshot_size)

    def compact(self, text: str) -> None:
        """Make ``text`` the snapshot, then empty the journal."""
        directory = os.path.dirname(os.path.abspath(self.state_file))
        fd, tmp = tempfile.mkstemp(prefix=".sandbox-state-", dir=directory)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as f:
                f.write(text)
            os.replace(tmp, self.state_file)
        except BaseException:
            with contextlib.suppress(OSError):
                os.unlink(tmp)
            raise
        self.snapshot_size = len(text)
        os.ftruncate(self._open(), 0)
        self.size = 0
        self.broken = False

    def close(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None

    def _open(self) -> int:
        if self.fd is None:
            self.fd = os.open(self.path, os.O_RDWR | os.O_APPEND | os.O_CREAT, 0o600)
            self.size = os.fstat(self.fd).st_size
            if self.size and os.pread(self.fd, 1, self.size - 1) != b"\n":
                # A torn last line: end it, so the next line is not glued to it.
                self.size += os.write(self.fd, b"\n")
        return self.fd
