"""The lock file CI audits pins the dependencies pyproject.toml asks for, within their ranges."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from packaging.requirements import Requirement

ROOT = Path(__file__).resolve().parents[2]


def _pins() -> dict[str, str]:
    text = (ROOT / ".ci" / "requirements.lock").read_text()
    return {
        m.group(1).lower().replace("_", "-"): m.group(2)
        for m in re.finditer(r"^([A-Za-z0-9_.\-]+)==([^\s\\]+)", text, re.M)
    }


def test_every_dependency_is_locked_with_a_version_its_range_allows_and_hashes():
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    declared = project["dependencies"] + project["optional-dependencies"]["test"]
    wanted = [Requirement(r) for r in declared]
    pins = _pins()
    stale = [
        f"{r.name}: locked {pins.get(r.name.lower())}, wanted {r.specifier}"
        for r in wanted
        if r.name.lower() not in pins or not r.specifier.contains(pins[r.name.lower()])
    ]
    assert stale == [], "re-lock (see .ci/audit): " + "; ".join(stale)
    # Each pin carries its hashes (a line ending in a continuation, hashes below it)
    lock = (ROOT / ".ci" / "requirements.lock").read_text()
    unhashed = re.findall(r"^\S+==\S+\s*$", lock, re.M)
    assert unhashed == [] and lock.count("--hash=sha256:") >= len(pins)
