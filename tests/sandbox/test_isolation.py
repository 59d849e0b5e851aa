"""The sandbox stands alone: it imports nothing else of this project."""

from __future__ import annotations

import ast
from pathlib import Path

import bss.sandbox

SANDBOX = Path(bss.sandbox.__file__).parent
PROJECT_PACKAGES = ("bss", "web", "workers")


def imported_modules(path: Path) -> set[str]:
    names: set[str] = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            names.add(node.module)
    return names


def test_sandbox_imports_only_itself_from_the_project():
    offenders = {
        f"{path.name}: {name}"
        for path in SANDBOX.glob("*.py")
        for name in imported_modules(path)
        if name.split(".")[0] in PROJECT_PACKAGES and not name.startswith("bss.sandbox")
    }
    assert not offenders


def test_no_sandbox_module_is_past_four_hundred_lines():
    assert all(len(p.read_text().splitlines()) <= 400 for p in SANDBOX.glob("*.py"))
