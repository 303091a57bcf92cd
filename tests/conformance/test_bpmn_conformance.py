"""Public BPMN models (SpiffWorkflow's own test models, the BPMN MIWG reference models; sources and licences
in tests/conformance/bpmn/README.md) run by gmpflow through its service API, each with its expected end state
(``expected.json``: completed with its end data, waiting, or refused with the problem code naming why), and by
SpiffWorkflow 3.2.0 alone: where both run a file to the end, the end data are the same."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from engine.definitions.bundle import Bundle
from tests.conformance.runner import run_gmpflow, run_spiff

MODELS = Path(__file__).parent / "bpmn"
EXPECTED = json.loads((MODELS / "expected.json").read_text())


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_gmpflow_ends_each_public_model_as_expected_and_as_spiffworkflow_alone_where_both_run(corpus_engine,
                                                                                           name):
    path = MODELS / name
    ours, theirs = run_gmpflow(corpus_engine, path).as_dict(), run_spiff(path).as_dict()
    assert ours == EXPECTED[name]["gmpflow"]
    assert theirs == EXPECTED[name]["spiffworkflow"]
    if ours["status"] == theirs["status"] == "completed":
        assert ours["data"] == theirs["data"]


def test_what_spiffworkflow_alone_runs_to_the_end_gmpflow_runs_or_refuses_at_lint_with_a_reason():
    """Nothing SpiffWorkflow completes fails in gmpflow after deployment: it completes too, or its lint or its
    start refusal names the element and why (a lane naming no role)."""
    for name, outcome in EXPECTED.items():
        if outcome["spiffworkflow"]["status"] == "completed":
            assert outcome["gmpflow"]["status"] == "completed" or outcome["gmpflow"]["code"] in {
                "script_rejected", "unknown_role"}, name


LOCALS_MODEL = MODELS / "spiffworkflow/spiff/script_task_with_unit_tests.bpmn"


def test_a_script_asking_locals_whether_a_variable_is_set_runs_as_in_spiffworkflow(corpus_engine):
    """``script_task_with_unit_tests.bpmn`` asks ``'hey' in locals()``: the sandbox's ``locals()`` is a copy
    of the script's data variables, so the file runs to the end with SpiffWorkflow's end data."""
    assert "locals()" in LOCALS_MODEL.read_text(encoding="utf-8")
    assert run_gmpflow(corpus_engine, LOCALS_MODEL).as_dict() == run_spiff(LOCALS_MODEL).as_dict() == {
        "status": "completed", "data": {"hey": True}}


@pytest.mark.parametrize("call", ["globals()", "vars()", "dir()"])
def test_the_same_script_asking_globals_vars_or_dir_is_refused_at_lint_naming_its_element(corpus_engine,
                                                                                            call):
    """globals() holds the guards and the builtins, vars(x) and dir(x) read any object's attributes: the
    sandbox offers none of them, and the lint names the script task."""
    text = LOCALS_MODEL.read_text(encoding="utf-8").replace("locals()", call)
    [problem] = corpus_engine.lint_bundle(Bundle({LOCALS_MODEL.name: text}))
    assert (problem.code, problem.context["element_id"]) == ("script_rejected", "script_with_unit_test_id")
    assert f"'{call}' is not available in scripts" in problem.message
