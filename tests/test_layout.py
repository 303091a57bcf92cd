"""The dependency rule of engine/README.md: the engine knows nothing of Flask, of the web app, of concrete
connectors, of the GMP pack (``gmp/``) or of the benchmark harness (``bench/``). It may import the connector
hook specification (``connectors.hookspecs``). Between the top-level packages imports go one way only
(``DEPENDS_ON``), and the project's modules import each other without a circle."""

from __future__ import annotations

import ast
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
ENGINE = ROOT / "engine"
FORBIDDEN_ROOTS = ("flask", "webapp", "connectors", "bench", "gmp")
ALLOWED = {"connectors.hookspecs"}
# No exception, not even inside a function: `gmpflow run` (the web app's) and `gmpflow bench` (the harness's)
# are added to the engine's CLI from outside (engine/cli_host.py).


def imported_modules(tree: ast.Module) -> list[tuple[str, int, bool]]:
    """(module, line, at module level) for every absolute import in ``tree``."""
    found: list[tuple[str, int, bool]] = []
    top_level = {id(node) for node in tree.body}
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            found += [(alias.name, node.lineno, id(node) in top_level) for alias in node.names]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            if node.module == "connectors":  # `from connectors import hookspecs`
                found += [(f"connectors.{alias.name}", node.lineno, id(node) in top_level)
                          for alias in node.names]
            else:
                found.append((node.module, node.lineno, id(node) in top_level))
    return found


def is_forbidden(module: str) -> bool:
    root = module.split(".")[0]
    return root in FORBIDDEN_ROOTS and module not in ALLOWED


def violations(path: Path, root: Path = ENGINE) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    relative = path.relative_to(root).as_posix()
    return [f"engine/{relative}:{line} imports {module}"
            for module, line, _ in imported_modules(tree) if is_forbidden(module)]


def engine_modules() -> list[Path]:
    return sorted(ENGINE.rglob("*.py"))


def test_engine_has_modules_to_scan() -> None:
    assert len(engine_modules()) > 5


def test_engine_imports_neither_flask_nor_webapp_nor_connector_implementations_nor_bench() -> None:
    problems = [v for path in engine_modules() for v in violations(path)]
    assert not problems, "engine/ must not depend on these (see engine/README.md):\n" + "\n".join(problems)


@pytest.mark.parametrize(("source", "bad"), [
    ("import flask", True),
    ("from flask import Flask", True),
    ("import webapp.api", True),
    ("from connectors.tryton import TrytonConnector", True),
    ("from connectors import simulator", True),
    ("import connectors", True),
    ("from connectors.hookspecs import hookspec", False),
    ("from connectors import hookspecs", False),
    ("import connectors.hookspecs", False),
    ("import flaskish", False),
    ("from bench.core import run_bench", True),
    ("import bench", True),
    ("import benchmark", False),
    ("from .webapp import x", False),
])
def test_the_scan_recognises_forbidden_imports(source: str, bad: bool) -> None:
    modules = imported_modules(ast.parse(source))
    assert any(is_forbidden(m) for m, _, _ in modules) is bad


def test_the_benchmark_harness_lives_outside_the_engine() -> None:
    assert not list(ENGINE.glob("bench*")), "the harness belongs in bench/, not engine/"
    assert (ENGINE.parent / "bench" / "core.py").is_file()


def test_an_import_inside_a_function_is_a_violation_too(tmp_path: Path) -> None:
    (tmp_path / "cli.py").write_text("import click\n\n\ndef run() -> None:\n"
                                     "    from webapp import create_app\n")
    assert violations(tmp_path / "cli.py", root=tmp_path) == ["engine/cli.py:5 imports webapp"]


# SpiffWorkflow's API moves between minor releases: one package adapts it (engine/README.md). The benchmark's
# baseline is stock SpiffWorkflow on purpose (the engine is measured against it), so bench/ may import it too.
SPIFF_SEAM = "engine/spiff/"
SPIFF_BASELINE = "bench/"
PROJECT_PACKAGES = ("engine", "gmp", "webapp", "connectors", "bench")


def spiff_imports(root: Path) -> list[str]:
    found = []
    for package in PROJECT_PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            relative = path.relative_to(root).as_posix()
            if relative.startswith((SPIFF_SEAM, SPIFF_BASELINE)):
                continue
            for module, line, _ in imported_modules(ast.parse(path.read_text(), filename=str(path))):
                if module.split(".")[0] == "SpiffWorkflow":
                    found.append(f"{relative}:{line} imports {module}")
    return found


def test_spiffworkflow_is_imported_only_under_engine_spiff() -> None:
    problems = spiff_imports(ENGINE.parent)
    assert not problems, "import SpiffWorkflow only in engine/spiff/ (its adapter):\n" + "\n".join(problems)


def test_the_spiff_scan_finds_an_import_outside_the_seam(tmp_path: Path) -> None:
    (tmp_path / "engine" / "runtime").mkdir(parents=True)
    (tmp_path / "engine" / "spiff").mkdir()
    (tmp_path / "engine" / "runtime" / "x.py").write_text("from SpiffWorkflow.util.task import TaskState\n")
    (tmp_path / "engine" / "spiff" / "y.py").write_text("import SpiffWorkflow\n")
    assert spiff_imports(tmp_path) == ["engine/runtime/x.py:1 imports SpiffWorkflow.util.task"]


def test_engine_knows_no_gmp_content() -> None:
    modules = imported_modules(ast.parse("from gmp import lots\nimport gmp.pack"))
    assert all(is_forbidden(m) for m, _, _ in modules)


# -- the direction of imports between the top-level packages ----------------------------------------------
PACKAGES = ("engine", "gmp", "connectors", "webapp", "bench")
# what each package may import of the others (the engine's few exceptions are above); the GMP pack reaches the
# web app and the connectors only through the engine's hooks
DEPENDS_ON = {
    "engine": set(),
    "gmp": {"engine"},
    "connectors": {"engine"},
    "webapp": {"engine", "gmp"},
    "bench": {"engine", "gmp", "connectors", "webapp"},
}


def project_files(package: str) -> list[Path]:
    """The package's modules, without the scenario tests that live beside the models (``gmp/processes``)."""
    return sorted(p for p in (ROOT / package).rglob("*.py") if not p.name.startswith("test_"))


def test_every_top_level_package_has_a_rule() -> None:
    found = {p.parent.name for p in ROOT.glob("*/__init__.py")} - {"tests", "scripts", "docs"}
    assert found == set(PACKAGES)


@pytest.mark.parametrize("package", [p for p in PACKAGES if p != "engine"])  # the engine's rule is above
def test_imports_between_top_level_packages_go_one_way(package: str) -> None:
    forbidden = set(PACKAGES) - DEPENDS_ON[package] - {package}
    problems = [f"{path.relative_to(ROOT)}:{line} imports {module}"
                for path in project_files(package)
                for module, line, _ in imported_modules(ast.parse(path.read_text(), filename=str(path)))
                if module.split(".")[0] in forbidden]
    assert not problems, f"{package}/ may import only {sorted(DEPENDS_ON[package])}:\n" + "\n".join(problems)


# -- no circles among the project's modules -----------------------------------------------------------------
def module_name(path: Path) -> str:
    parts = list(path.relative_to(ROOT).with_suffix("").parts)
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def import_graph() -> dict[str, set[str]]:
    """Module → the project modules it imports, at module level or inside a function. Not counted: imports
    under ``if TYPE_CHECKING:`` (annotations only) and a module's own parent packages (Python runs those
    before the module anyway: a blueprint's package importing its route modules is no circle)."""
    paths = {module_name(p): p for package in PACKAGES for p in project_files(package)}

    def resolve(name: str) -> str | None:
        while name and name not in paths:
            name = name.rpartition(".")[0]
        return name or None

    graph: dict[str, set[str]] = {}
    for name, path in paths.items():
        tree = ast.parse(path.read_text(), filename=str(path))
        typing_only = {id(n) for node in ast.walk(tree)
                       if isinstance(node, ast.If) and "TYPE_CHECKING" in ast.unparse(node.test)
                       for stmt in node.body for n in ast.walk(stmt)}
        package = name if path.name == "__init__.py" else name.rpartition(".")[0]
        targets: set[str] = set()
        for node in ast.walk(tree):
            if id(node) in typing_only:
                continue
            if isinstance(node, ast.Import):
                targets |= {t for alias in node.names if (t := resolve(alias.name))}
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                if node.level:
                    base = ".".join([*package.split(".")[:len(package.split(".")) - node.level + 1],
                                     *([node.module] if node.module else [])])
                for alias in node.names:  # `from engine import audit` imports the module engine.audit
                    child = f"{base}.{alias.name}"
                    found = resolve(child) if child in paths else resolve(base)
                    if found:
                        targets.add(found)
        graph[name] = {t for t in targets if t != name and not name.startswith(t + ".")}
    return graph


def circles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan)."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    found: list[list[str]] = []

    def visit(node: str) -> None:
        index[node] = low[node] = len(index)
        stack.append(node)
        for target in sorted(graph.get(node, ())):
            if target not in index:
                visit(target)
                low[node] = min(low[node], low[target])
            elif target in stack:
                low[node] = min(low[node], index[target])
        if low[node] == index[node]:
            component = [stack.pop()]
            while component[-1] != node:
                component.append(stack.pop())
            if len(component) > 1:
                found.append(sorted(component))

    limit = sys.getrecursionlimit()
    sys.setrecursionlimit(max(limit, 10 * len(graph)))
    try:
        for node in sorted(graph):
            if node not in index:
                visit(node)
    finally:
        sys.setrecursionlimit(limit)
    return found


def test_the_import_graph_has_modules_of_every_package() -> None:
    graph = import_graph()
    assert {name.split(".")[0] for name in graph} == set(PACKAGES)
    assert "engine.audit" in graph["engine.services"] and "engine.packs" in graph["gmp.pack"]


def test_no_module_of_the_project_imports_itself_through_a_circle() -> None:
    found = circles(import_graph())
    assert not found, "import circles (move what both sides need into a module of its own):\n" + "\n".join(
        " -> ".join(c) for c in found)


@pytest.mark.parametrize(("graph", "expected"), [
    ({"a": {"b"}, "b": {"c"}, "c": set()}, []),
    ({"a": {"b"}, "b": {"a"}}, [["a", "b"]]),
    ({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}, [["a", "b", "c"]]),
])
def test_the_circle_search_finds_circles(graph: dict[str, set[str]], expected: list[list[str]]) -> None:
    assert circles(graph) == expected
