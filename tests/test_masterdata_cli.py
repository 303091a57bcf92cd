"""``gmpflow masterdata``: types, records, show, diff and an all-or-nothing import from a file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.cli import main
from engine.services import Gmpflow
from tests.masterdata_support import material


@pytest.fixture
def run(engine: Gmpflow, md, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]  # noqa: F811
    monkeypatch.setattr("engine.cli._engine", lambda: engine)  # the test's database, not GMPFLOW_DATABASE_URL
    return lambda *args: CliRunner().invoke(main, [str(a) for a in args])


def test_import_then_list_show_and_diff(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    file = tmp_path / "materials.json"
    file.write_text(json.dumps([{"type": "material", "key": "MAT-1", "title": "Lactose",
                                 "data": material("MAT-1")}]))
    assert run("masterdata", "import", file).output == "material MAT-1 v1 draft\n"
    assert "material\tv1\t" in run("masterdata", "types").output
    assert run("masterdata", "records", "material").output == "MAT-1\tLactose\tv1 draft\n"
    assert json.loads(run("masterdata", "show", "material",
                          "MAT-1").output)["versions"][0]["data"]["id"] == "MAT-1"
    assert run("masterdata", "diff", "material", "MAT-1", 1, 1).output == ""


def test_a_failed_import_names_each_problem_and_exits_1(run, tmp_path: Path) -> None:  # type: ignore[no-untyped-def]
    file = tmp_path / "bad.json"
    file.write_text(json.dumps([{"type": "material", "key": "MAT-1", "data": material("MAT-1")},
                                {"type": "material", "key": "MAT-2", "data": {"id": "MAT-2"}}]))
    result = run("masterdata", "import", file)
    assert result.exit_code == 1
    assert "import_failed" in result.output and "/1/data/supplier" in result.output
    assert run("masterdata", "records", "material").output == ""
