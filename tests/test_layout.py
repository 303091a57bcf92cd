"""The dependency rule of engine/README.md: the engine knows nothing of Flask, of the web app, of concrete
connectors or of the benchmark harness (``bench/``). It may import the connector hook specification
(``connectors.hookspecs``)."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

ENGINE = Path(__file__).resolve().parents[1] / "engine"
FORBIDDEN_ROOTS = ("flask", "webapp", "connectors", "bench")
ALLOWED = {"connectors.hookspecs"}

# The places the engine may reach outward: `gmpflow run` is the composition root that starts the web app
# (and the demo's simulator beside it), `gmpflow bench` runs the harness; each imports it inside the command
# function (never at module level).
LAZY_EXCEPTIONS = {("cli.py", "webapp"), ("cli.py", "connectors"), ("cli.py", "bench")}


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


def violations(path: Path) -> list[str]:
    tree = ast.parse(path.read_text(), filename=str(path))
    relative = path.relative_to(ENGINE).as_posix()
    return [
        f"engine/{relative}:{line} imports {module}"
        for module, line, top_level in imported_modules(tree)
        if is_forbidden(module)
        and not ((relative, module.split(".")[0]) in LAZY_EXCEPTIONS and not top_level)
    ]


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


def test_bench_is_reached_from_the_engine_only_inside_the_command_function() -> None:
    tree = ast.parse((ENGINE / "cli.py").read_text())
    bench_imports = [(m, top) for m, _, top in imported_modules(tree) if m.split(".")[0] == "bench"]
    assert bench_imports and not any(top for _, top in bench_imports)


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
