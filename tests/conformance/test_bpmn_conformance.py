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
    start refusal names the element and why (the sandbox refuses introspection such as ``locals()``, a lane
    naming no role)."""
    for name, outcome in EXPECTED.items():
        if outcome["spiffworkflow"]["status"] == "completed":
            assert outcome["gmpflow"]["status"] == "completed" or outcome["gmpflow"]["code"] in {
                "script_rejected", "unknown_role"}, name


def test_a_script_reading_locals_is_refused_at_lint_naming_its_element(corpus_engine):
    """SpiffWorkflow alone completes ``script_task_with_unit_tests.bpmn``; its script asks ``locals()``, which
    the sandbox does not offer (introspection: a script reads the variables it names), so gmpflow refuses it
    at lint, naming the script task, rather than run it differently."""
    path = MODELS / "spiffworkflow/spiff/script_task_with_unit_tests.bpmn"
    [problem] = corpus_engine.lint_bundle(Bundle({path.name: path.read_text(encoding="utf-8")}))
    assert (problem.code, problem.context["element_id"]) == ("script_rejected", "script_with_unit_test_id")
    assert "locals()" in problem.message
