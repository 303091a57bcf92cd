"""The DMN TCK, compliance levels 2 and 3 (vendored in tests/conformance/dmn_tck): every model is deployed
alone, as a decision service. What lint accepts must be right: each model lint accepts passes every test case
of its folder (evaluated by key through the engine, as a business rule task would call it); each model it
refuses is refused naming the DMN or FEEL feature gmpflow does not evaluate, never evaluated wrongly. Which
folders are claimed (accepted, every case passing) is pinned below, so that a lint that starts refusing a
claimed feature is noticed too."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from engine.errors import DefinitionError
from engine.services import Gmpflow
from tests.conftest import ADMIN
from tests.dmn_tck_support import HERE, cases, decision_ids_by_name, same

LEVEL_2 = HERE / "compliance-level-2"
LEVEL_3 = HERE / "compliance-level-3"
FOLDERS = sorted(p for level in (LEVEL_2, LEVEL_3) for p in level.iterdir() if p.is_dir())
# Every folder of level 2 but the one using business knowledge models, and these of level 3.
CLAIMED_LEVEL_3 = {"0017-tableTests", "0020-vacation-days", "0036-dt-variable-input",
                   "0039-dt-list-semantics", "0064-feel-conjunction", "0065-feel-disjunction",
                   "0066-feel-negation", "0077-feel-nan", "0078-feel-infinity"}
NOT_CLAIMED_LEVEL_2 = {"0009-invocation-arithmetic"}  # business knowledge models
# Codes a refusal at lint names an unsupported feature with
REFUSALS = {"dmn_unsupported", "feel_unsupported", "script_rejected", "dmn_invalid"}
# The expected payments of 0008 were computed in binary floating point: they differ from the exact decimal
# result (FEEL numbers are decimals) after the 12th significant digit.
SIGNIFICANT_DIGITS = {"0008-LX-arithmetic": 12}


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


def same_as_tck(folder: str, actual: Any, expected: Any) -> bool:
    """Whether a result is the TCK's expected one (to the digits the TCK computed it with)."""
    digits = SIGNIFICANT_DIGITS.get(folder)
    if digits:
        actual, expected = rounded(actual, digits), rounded(expected, digits)
    return same(actual, expected)


def claimed(folder: Path) -> bool:
    if folder.parent == LEVEL_3:
        return folder.name in CLAIMED_LEVEL_3
    return folder.name not in NOT_CLAIMED_LEVEL_2


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize("folder", FOLDERS, ids=lambda f: f"{f.parent.name[-7:]}/{f.name}")
def test_a_tck_model_lint_accepts_passes_every_case_and_one_it_refuses_names_the_feature(engine: Gmpflow,
                                                                                     folder: Path) -> None:
    accepted: dict[str, tuple[str, dict[str, str]]] = {}
    for model in sorted(folder.glob("*.dmn")):
        try:
            deployment, _ = engine.deploy(ADMIN, [model])
        except DefinitionError as refused:
            problems = refused.context["problems"]
            assert problems and {p["code"] for p in problems} <= REFUSALS, problems
            assert all(p.get("element_id") or p.get("line") for p in problems), problems
            continue
        accepted[model.name] = (deployment.key, decision_ids_by_name(model.read_bytes()))
    failed = []
    for case in cases(folder):
        if case.model not in accepted:
            continue
        key, ids = accepted[case.model]
        for name, expected in case.expected.items():
            actual = engine.evaluate_decision(key, json_value(case.inputs), ids[name])["value"]
            if not same_as_tck(folder.name, actual, expected):
                failed.append((case.case_id, name, actual, expected))
    assert not failed, failed
    # claimed: the models every case of the folder evaluates are accepted (a model that other models import
    # may be accepted alone while the importing one, which the cases evaluate, is refused)
    assert ({c.model for c in cases(folder)} <= set(accepted)) == claimed(folder), sorted(accepted)


def test_the_vendored_tck_is_levels_2_and_3_whole() -> None:
    assert len([f for f in FOLDERS if f.parent == LEVEL_2]) == 28
    assert len([f for f in FOLDERS if f.parent == LEVEL_3]) == 118
    assert CLAIMED_LEVEL_3 <= {f.name for f in FOLDERS}
    assert all(cases(folder) for folder in FOLDERS)
    assert Path(HERE / "LICENSE-ASL-2.0.txt").exists()
