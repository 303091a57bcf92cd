"""docs/traceability.md names tests that exist: a clause is only as covered as the test it cites."""

from __future__ import annotations

import ast
import re
from functools import cache

from tests.conftest import ROOT

CITED = re.compile(r"`((?:[\w/]+/)?test_\w+\.py)::(test_\w+)")


@cache
def _tests_in(path: str) -> frozenset[str]:
    file = ROOT / path if "/" in path else ROOT / "tests" / path
    tree = ast.parse(file.read_text(), filename=str(file))
    return frozenset(node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)
                     and node.name.startswith("test_"))


def test_every_test_the_traceability_matrix_cites_exists() -> None:
    cited = CITED.findall((ROOT / "docs" / "traceability.md").read_text())
    assert len(cited) > 50
    missing = [f"{path}::{name}" for path, name in cited if name not in _tests_in(path)]
    assert missing == []
