"""The package boundaries of DESIGN.md, checked by walking every import."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def imported_modules(package: str) -> dict[str, set[str]]:
    """Each module file of `package` → the top-level names it imports."""
    found: dict[str, set[str]] = {}
    for path in (ROOT / package).rglob("*.py"):
        names: set[str] = set()
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names.update(a.name for a in node.names)
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                names.add(node.module)
        found[str(path.relative_to(ROOT))] = names
    return found


def offenders(package: str, forbidden: tuple[str, ...], *, skip: str | None = None) -> list[str]:
    return sorted(
        f"{module} imports {name}"
        for module, names in imported_modules(package).items()
        if not (skip and module.startswith(skip))
        for name in names
        if any(name == f or name.startswith(f + ".") for f in forbidden)
    )


def test_web_never_imports_workers():
    assert offenders("web", ("workers",)) == []


def test_workers_never_import_web():
    assert offenders("workers", ("web",)) == []


def test_core_imports_neither_edge():
    assert offenders("bss", ("web", "workers")) == []


def test_sandbox_imports_nothing_else_of_ours():
    found = [
        f"{module} imports {name}"
        for module, names in imported_modules("bss/sandbox").items()
        for name in names
        if name.split(".")[0] in ("web", "workers")
        or (name.startswith("bss") and not name.startswith("bss.sandbox"))
    ]
    assert found == []


def test_only_the_gateway_imports_google_client_libraries():
    google = ("googleapiclient", "google_auth_oauthlib", "google_auth_httplib2", "google.oauth2")
    found = [
        line
        for pkg in ("bss", "web", "workers")
        for line in offenders(pkg, google)
        if not line.startswith(("bss/gateway/", "bss/sandbox/"))
    ]
    assert found == []


def test_the_walker_sees_a_forbidden_import(tmp_path, monkeypatch):
    # Given a package that imports a forbidden one, the check reports it.
    pkg = tmp_path / "web"
    pkg.mkdir()
    (pkg / "bad.py").write_text("from workers.actors import run_job\n")
    monkeypatch.setattr(__import__(__name__), "ROOT", tmp_path)
    assert offenders("web", ("workers",)) == ["web/bad.py imports workers.actors"]
