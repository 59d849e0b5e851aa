"""The layout of docs/architecture.md, checked by walking every import of the code.

- web/ and workers/ import bss/, never each other; bss/ imports neither.
- bss/ is a ground floor (a few modules every wing uses, and the models) with wings (packages)
  above it. A wing is used through what its __init__ exports: no other package imports one of
  its modules, or a name its __init__ does not list in __all__.
- No two wings import each other, directly or round a longer circle, even inside a function.
- The ground floor imports no wing; the sandbox imports nothing else of ours; only the gateway
  imports Google's client libraries.
- bss/ keeps at most eight modules at its top; no module of bss/, web/ or workers/ passes 400
  lines.
"""

from __future__ import annotations

import ast
from dataclasses import dataclass
from functools import cache
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
MAX_TOP_MODULES = 8
MAX_LINES = 400
# Modules at bss/'s top that are entry points, not part of the ground floor.
ENTRY_POINTS = ("__init__", "__main__")


@dataclass(frozen=True)
class Import:
    """One import statement's target, as written: `from module import name` or `import module`."""

    source: str  # the importing file, relative to ROOT
    module: str
    name: str | None = None

    def __str__(self) -> str:
        what = f"{self.module}.{self.name}" if self.name else self.module
        return f"{self.source} imports {what}"


def imports_of(package: str, root: Path | None = None) -> list[Import]:
    """Every absolute import in every file of `package`, wherever it stands in the file."""
    root = root or ROOT
    found = []
    for path in sorted((root / package).rglob("*.py")):
        source = str(path.relative_to(root))
        for node in ast.walk(ast.parse(path.read_text(), source)):
            if isinstance(node, ast.Import):
                found += [Import(source, a.name) for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
                found += [Import(source, node.module, a.name) for a in node.names]
    return found


def offenders(package: str, forbidden: tuple[str, ...], *, root: Path | None = None) -> list[str]:
    return sorted(
        str(imp)
        for imp in imports_of(package, root)
        if any(imp.module == f or imp.module.startswith(f + ".") for f in forbidden)
    )


@cache
def wings(root: Path = ROOT) -> frozenset[str]:
    """The packages directly under bss/."""
    return frozenset(p.parent.name for p in (root / "bss").glob("*/__init__.py"))


@cache
def exports(wing: str, root: Path = ROOT) -> frozenset[str]:
    """The names a wing's __init__ lists in __all__."""
    tree = ast.parse((root / "bss" / wing / "__init__.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
            isinstance(t, ast.Name) and t.id == "__all__" for t in node.targets
        ):
            return frozenset(ast.literal_eval(node.value))
    return frozenset()


def part_of(source: str) -> str:
    """The wing (or ground-floor module, or edge package) a file belongs to."""
    parts = Path(source).with_suffix("").parts
    return parts[1] if parts[0] == "bss" and len(parts) > 1 else parts[0]


def target_of(imp: Import) -> str | None:
    """The part of bss an import reaches (a wing or a ground-floor module), or None."""
    if imp.module == "bss":
        return imp.name
    if imp.module.startswith("bss."):
        return imp.module.split(".")[1]
    return None


def private_imports(packages: tuple[str, ...], root: Path = ROOT) -> list[str]:
    """Imports that reach past another wing's __init__ (its modules, or names it keeps)."""
    found = []
    all_wings = wings(root)
    for package in packages:
        for imp in imports_of(package, root):
            wing = target_of(imp)
            if wing not in all_wings or wing == part_of(imp.source):
                continue
            depth = imp.module.split(".")
            if len(depth) > 2:  # bss.wing.module
                found.append(str(imp))
            elif len(depth) == 2 and imp.name and imp.name not in exports(wing, root):
                found.append(f"{imp} (not in bss.{wing}.__all__)")
    return sorted(found)


def dependencies(root: Path = ROOT) -> dict[str, set[str]]:
    """Which parts of bss each part imports (wings and ground-floor modules)."""
    graph: dict[str, set[str]] = {}
    for imp in imports_of("bss", root):
        source = part_of(imp.source)
        if source in ENTRY_POINTS:
            continue
        graph.setdefault(source, set())
        target = target_of(imp)
        if target and target != source and target not in ENTRY_POINTS:
            graph[source].add(target)
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """Each circle of imports between parts, as the path that closes it."""
    found: list[list[str]] = []
    done: set[str] = set()

    def walk(node: str, path: list[str]) -> None:
        if node in path:
            circle = path[path.index(node) :]
            if sorted(circle) not in [sorted(c) for c in found]:
                found.append([*circle, node])
            return
        if node in done:
            return
        for nxt in sorted(graph.get(node, ())):
            walk(nxt, [*path, node])
        done.add(node)

    for node in sorted(graph):
        walk(node, [])
    return found


def ground_floor(root: Path = ROOT) -> list[str]:
    """The modules at bss/'s top, less the entry points."""
    return sorted(p.stem for p in (root / "bss").glob("*.py") if p.stem not in ENTRY_POINTS)


# The edges


def test_web_never_imports_workers():
    assert offenders("web", ("workers",)) == []


def test_workers_never_import_web():
    assert offenders("workers", ("web",)) == []


def test_core_imports_neither_edge():
    assert offenders("bss", ("web", "workers")) == []


# The wings


def test_wings_are_used_through_their_exports():
    assert private_imports(("bss", "web", "workers")) == []


def test_no_two_wings_import_each_other():
    assert circles(dependencies()) == []


def test_the_ground_floor_imports_no_wing():
    ground = {*ground_floor(), "models", "migrations"}
    found = [
        f"{part} imports bss.{target}"
        for part, targets in dependencies().items()
        if part in ground
        for target in targets
        if target not in ground
    ]
    assert found == []


def test_the_ground_floor_stays_small():
    assert len(ground_floor()) <= MAX_TOP_MODULES, ground_floor()


def test_every_wing_says_what_it_holds_and_exports():
    for wing in sorted(wings() - {"migrations"}):
        init = ROOT / "bss" / wing / "__init__.py"
        assert ast.get_docstring(ast.parse(init.read_text())), f"bss/{wing}/__init__.py"
        assert exports(wing), f"bss/{wing}/__init__.py has no __all__"


def test_no_module_passes_the_line_limit():
    long = [
        f"{path.relative_to(ROOT)} ({n} lines)"
        for package in ("bss", "web", "workers")
        for path in sorted((ROOT / package).rglob("*.py"))
        if (n := len(path.read_text().splitlines())) > MAX_LINES
    ]
    assert long == []


def test_sandbox_imports_nothing_else_of_ours():
    found = [
        str(imp)
        for imp in imports_of("bss/sandbox")
        if imp.module.split(".")[0] in ("web", "workers")
        or (target_of(imp) not in (None, "sandbox"))
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


# The checks themselves see what they look for


@pytest.fixture
def tree(tmp_path: Path) -> Path:
    """Given a small tree: wings a (exports `ok`) and b, a ground-floor module, and web/."""
    for wing in ("a", "b"):
        (tmp_path / "bss" / wing).mkdir(parents=True)
    (tmp_path / "bss" / "__init__.py").write_text("")
    (tmp_path / "bss" / "a" / "__init__.py").write_text(
        '"""Wing a."""\nfrom bss.a.inner import ok\n__all__ = ["ok"]\n'
    )
    (tmp_path / "bss" / "a" / "inner.py").write_text("ok = 1\nhidden = 2\n")
    (tmp_path / "bss" / "b" / "__init__.py").write_text('"""Wing b."""\n__all__ = []\n')
    (tmp_path / "bss" / "settings.py").write_text("")
    (tmp_path / "web").mkdir()
    wings.cache_clear()
    exports.cache_clear()
    yield tmp_path
    wings.cache_clear()
    exports.cache_clear()


def test_the_walker_sees_a_forbidden_import(tree: Path):
    (tree / "web" / "bad.py").write_text("from workers.actors import run_job\n")
    assert offenders("web", ("workers",), root=tree) == [
        "web/bad.py imports workers.actors.run_job"
    ]


def test_the_walker_sees_a_private_import(tree: Path):
    # When wing b and web reach into wing a, past its exports
    (tree / "bss" / "b" / "uses_a.py").write_text(
        "from bss.a import ok\nfrom bss.a.inner import hidden\n"
    )
    (tree / "web" / "page.py").write_text("def f():\n    from bss.a import hidden\n")
    # Then both are reported, and the exported name is not
    assert private_imports(("bss", "web"), tree) == [
        "bss/b/uses_a.py imports bss.a.inner.hidden",
        "web/page.py imports bss.a.hidden (not in bss.a.__all__)",
    ]


def test_the_walker_sees_a_circle_even_through_a_local_import(tree: Path):
    (tree / "bss" / "a" / "inner.py").write_text("def f():\n    from bss.b import nothing\n")
    (tree / "bss" / "b" / "x.py").write_text("from bss import a\nfrom bss.settings import s\n")
    assert circles(dependencies(tree)) == [["a", "b", "a"]]
    assert dependencies(tree)["b"] == {"a", "settings"}
