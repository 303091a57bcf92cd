"""The DMN TCK (compliance level 2 and the level-3 models gmpflow claims, vendored in
tests/conformance/dmn_tck): each model is deployed alone and
each test case evaluated by key through the engine, as a business rule task would call it; a model gmpflow
does not claim is refused at lint, never evaluated wrongly."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.errors import DefinitionError
from engine.services import Gmpflow
from tests.conftest import ADMIN
from tests.dmn_tck_support import HERE, TckCase, cases, decision_ids_by_name, same

LEVEL_2 = HERE / "compliance-level-2"
LEVEL_3 = HERE / "compliance-level-3"  # only the folders gmpflow claims are vendored
# Not claimed: the reason lint gives, as a word of its message
REFUSED = {"0009-invocation-arithmetic": "business knowledge models"}
# The expected payments of 0008 were computed in binary floating point: they differ from the exact decimal
# result (FEEL numbers are decimals) after the 12th significant digit.
SIGNIFICANT_DIGITS = {"0008-LX-arithmetic": 12}

FOLDERS = sorted(p for p in LEVEL_2.iterdir() if p.is_dir())
LEVEL_3_FOLDERS = sorted(p for p in LEVEL_3.iterdir() if p.is_dir())
CLAIMED = [c for folder in FOLDERS + LEVEL_3_FOLDERS if folder.name not in REFUSED for c in cases(folder)]
LEVEL_OF = {folder.name: folder.parent for folder in FOLDERS + LEVEL_3_FOLDERS}


def json_value(value: Any) -> Any:
    """A TCK input as a client's JSON carries it into the task data."""
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if isinstance(value, list):
        return [json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: json_value(v) for k, v in value.items()}
    return value


def rounded(value: Any, digits: int) -> Any:
    if isinstance(value, (int, float, Decimal)) and not isinstance(value, bool):
        return Decimal(str(value)).quantize(Decimal(10) ** (Decimal(str(value)).adjusted() - digits + 1))
    return value


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("case", CLAIMED, ids=lambda c: c.name)
def test_a_claimed_tck_case_gives_the_expected_results(engine: Gmpflow, case: TckCase) -> None:
    model = LEVEL_OF[case.folder] / case.folder / case.model
    deployment, _ = engine.deploy(ADMIN, [model])
    ids = decision_ids_by_name(model.read_bytes())
    for name, expected in case.expected.items():
        actual = engine.evaluate_decision(deployment.key, json_value(case.inputs), ids[name])["value"]
        digits = SIGNIFICANT_DIGITS.get(case.folder)
        if digits:
            actual, expected = rounded(actual, digits), rounded(expected, digits)
        assert same(actual, expected), (name, actual, expected)


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("folder", sorted(REFUSED))
def test_a_tck_model_gmpflow_does_not_claim_is_refused_at_lint(engine: Gmpflow, folder: str) -> None:
    model = next((LEVEL_2 / folder).glob("*.dmn"))
    with pytest.raises(DefinitionError) as refused:
        engine.deploy(ADMIN, [model])
    problems = refused.value.context["problems"]
    assert problems and problems[0]["code"] == "dmn_unsupported", problems
    assert {p["code"] for p in problems} <= {"dmn_unsupported", "feel_unsupported"}, problems
    assert REFUSED[folder] in problems[0]["message"]


def test_every_vendored_tck_folder_is_claimed_or_refused() -> None:
    assert len(FOLDERS) == 28
    assert [f.name for f in LEVEL_3_FOLDERS] == ["0017-tableTests"]
    assert all(cases(folder) for folder in FOLDERS if folder.name not in REFUSED)
    assert Path(HERE / "LICENSE-ASL-2.0.txt").exists()
