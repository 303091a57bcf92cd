"""The static checks run with the tests, as pyproject.toml configures them: ruff with the rules of
[tool.ruff.lint] over the repository, mypy over the files of [tool.mypy]. Both come from the ``test`` extra
and run from the repository root, offline; a failure lists the findings. mypy keeps its cache in
.mypy_cache, so a run after a small change takes about a second (a cold one several)."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import ROOT


def run_module(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", *args], cwd=ROOT, capture_output=True, text=True,
                          timeout=300)


def test_ruff_reports_nothing() -> None:
    result = run_module("ruff", "check", "--no-fix", "--output-format", "concise", ".")
    assert result.returncode == 0, f"ruff check:\n{result.stdout}{result.stderr}"


def test_mypy_reports_nothing() -> None:
    result = run_module("mypy")
    assert result.returncode == 0, f"mypy:\n{result.stdout}{result.stderr}"
