"""DMN decisions: a DMN file deployed alone is a decision service that processes call by key; the decision a
task uses is the one active when it runs, named in the instance's history; every DMN 1.3 hit policy; the FEEL
subset of input entries and output cells; what gmpflow does not evaluate is refused at lint by name."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from engine.errors import Conflict, DefinitionError, NotFound, ScriptFailed
from engine.services import Gmpflow
from tests.conftest import ADMIN, FIXTURES
from tests.hostile_support import snapshot

SHARED = FIXTURES / "shared_decision"
SPIFF_CALL = (
    "<bpmn:extensionElements><spiffworkflow:calledDecisionId>{ref}</spiffworkflow:calledDecisionId>"
    "</bpmn:extensionElements>"
)
CAMUNDA_CALL = 'camunda:decisionRef="{ref}"'


def grade_dmn(a_from: int = 95) -> dict[str, str]:
    return {"lot_grade.dmn": (SHARED / "lot_grade.dmn").read_text().replace("{a_from}", str(a_from))}


def process(key: str, ref: str = "lot_grade", camunda: bool = False) -> dict[str, str]:
    text = (SHARED / "grade_process.bpmn").read_text().replace("{key}", key)
    if camunda:
        text = text.replace(
            '<bpmn:businessRuleTask id="grade"',
            f'<bpmn:businessRuleTask id="grade" {CAMUNDA_CALL.format(ref=ref)}',
        ).replace("{call}", "")
        text = text.replace("xmlns:bpmn=", 'xmlns:camunda="http://camunda.org/schema/1.0/bpmn" xmlns:bpmn=')
    else:
        text = text.replace("{call}", SPIFF_CALL.format(ref=ref))
    return {
        f"{key}.bpmn": text,
        "shared_decision_measure.form": (SHARED / "shared_decision_measure.form").read_text(),
    }


def run_to_grade(flow: Any, users: dict[str, Any], key: str, yield_pct: float) -> int:
    instance = flow.start_instance(users["operator"].actor, key, f"LOT-{key}", {})
    flow.complete(users["operator"], instance.id, "measure", {"yield_pct": yield_pct})
    return int(instance.id)


def test_a_dmn_file_deployed_alone_is_called_by_key_from_two_processes(flow, deploy, users) -> None:
    decision = deploy(grade_dmn())
    assert (decision.key, decision.version, decision.status) == ("lot_grade", 1, "active")
    deploy(process("grading_line_1"))
    deploy(process("grading_line_2", camunda=True))  # Camunda's decisionRef names the decision the same way

    first = run_to_grade(flow, users, "grading_line_1", 97)
    second = run_to_grade(flow, users, "grading_line_2", 85)

    assert flow.variables(first)["grade"] == "A"
    assert flow.variables(second)["grade"] == "B"
    step = next(h for h in flow.instance_detail(first)["history"] if h["element_id"] == "grade")
    assert step["decision"] == {
        "key": "lot_grade",
        "source": "shared",
        "version": 1,
        "deployment_id": decision.id,
        "content_hash": decision.content_hash,
    }


def test_a_running_instance_uses_the_decision_version_active_when_its_task_runs(flow, deploy, users) -> None:
    deploy(grade_dmn(a_from=95))
    deploy(process("grading_line"))
    instance = flow.start_instance(users["operator"].actor, "grading_line", "LOT-9", {})
    stricter = deploy(grade_dmn(a_from=98))  # goes live while the instance waits before its rule task

    flow.complete(users["operator"], instance.id, "measure", {"yield_pct": 96})

    assert flow.variables(instance.id)["grade"] == "B"
    step = next(h for h in flow.instance_detail(instance.id)["history"] if h["element_id"] == "grade")
    assert (step["decision"]["version"], step["decision"]["deployment_id"]) == (2, stricter.id)


def test_a_process_calling_a_decision_that_is_nowhere_deployed_is_refused_at_lint(engine, deploy) -> None:
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        deploy(process("grading_line", ref="no_such_decision"))
    problems = refused.value.context["problems"]
    assert [(p["code"], p["element_id"]) for p in problems] == [("decision_not_found", "grade")]
    assert "no_such_decision" in problems[0]["message"]
    assert snapshot(engine.db) == before


def test_a_decision_not_active_at_run_time_fails_the_task_with_a_clear_problem(
    engine: Gmpflow, deploy, users, tmp_path: Path
) -> None:
    engine.deploy(
        ADMIN,
        bundle=None,
        paths=[_write(grade_dmn(), tmp_path)],
        activate=False,
    )  # a draft, waiting for change control
    deploy(process("grading_line"))
    instance = engine.start_instance(users["operator"].actor, "grading_line", "LOT-1", {})
    task = next(t for t in engine.list_tasks(users["operator"], instance_id=instance.id))
    with pytest.raises(ScriptFailed) as failed:
        engine.complete_task(users["operator"], task.id, {"yield_pct": 90})
    assert failed.value.code == "decision_not_found"
    assert "lot_grade" in failed.value.message


def _write(files: dict[str, str], folder: Path) -> Path:
    target = folder / "draft_decision"
    target.mkdir(exist_ok=True)
    for name, text in files.items():
        (target / name).write_text(text)
    return target


def test_a_decision_has_no_instances(engine: Gmpflow, deploy, users) -> None:
    deploy(grade_dmn())
    with pytest.raises(Conflict) as refused:
        engine.start_instance(ADMIN, "lot_grade", "X", {})
    assert refused.value.code == "not_a_process"
    assert "lot_grade" not in [o["key"] for o in engine.start_options(users["admin"])]


def test_evaluating_a_key_that_is_no_decision_answers_not_found(engine: Gmpflow) -> None:
    with pytest.raises(NotFound) as missing:
        engine.evaluate_decision("nothing_here", {})
    assert missing.value.code == "definition_not_found"


# -- hit policies -----------------------------------------------------------------------------------------

TABLE = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="policy_defs" name="Policies"
             namespace="http://gmpflow.example/dmn">
  <decision id="policy" name="Policy">
    <decisionTable id="policy_table" hitPolicy="{policy}"{aggregation}>
      <input id="in_x" label="x">
        <inputExpression id="in_x_expr" typeRef="number"><text>x</text></inputExpression>
      </input>
      <output id="out_level" name="level" typeRef="string">
        <outputValues><text>"high", "medium", "low"</text></outputValues>
      </output>
      {second_output}
      <rule id="r1"><inputEntry id="r1_in"><text>&gt;= 0</text></inputEntry>
        <outputEntry id="r1_out"><text>"low"</text></outputEntry>{o1}</rule>
      <rule id="r2"><inputEntry id="r2_in"><text>&gt;= 10</text></inputEntry>
        <outputEntry id="r2_out"><text>"high"</text></outputEntry>{o2}</rule>
      <rule id="r3"><inputEntry id="r3_in"><text>&gt;= 20</text></inputEntry>
        <outputEntry id="r3_out"><text>"medium"</text></outputEntry>{o3}</rule>
    </decisionTable>
  </decision>
</definitions>
"""
POINTS = '<output id="out_points" name="points" typeRef="number"/>'


def policy_table(policy: str, aggregation: str | None = None, points: bool = False) -> dict[str, str]:
    extra = {
        f"o{i}": (f'<outputEntry id="r{i}_points"><text>{p}</text></outputEntry>' if points else "")
        for i, p in ((1, 1), (2, 10), (3, 100))
    }
    return {
        "policy.dmn": TABLE.format(
            policy=policy,
            second_output=POINTS if points else "",
            aggregation=f' aggregation="{aggregation}"' if aggregation else "",
            **extra,
        )
    }


@pytest.mark.parametrize(
    ("policy", "aggregation", "points", "x", "expected"),
    [
        ("UNIQUE", None, False, 5, "low"),
        ("FIRST", None, False, 25, "low"),
        ("PRIORITY", None, False, 25, "high"),  # ranked by the output values: high before medium before low
        ("PRIORITY", None, False, 15, "high"),
        ("OUTPUT ORDER", None, False, 25, ["high", "medium", "low"]),
        ("RULE ORDER", None, False, 25, ["low", "high", "medium"]),
        ("COLLECT", None, False, 15, ["low", "high"]),
        ("COLLECT", None, False, -1, []),
        (
            "RULE ORDER",
            None,
            True,
            25,
            [
                {"level": "low", "points": 1},
                {"level": "high", "points": 10},
                {"level": "medium", "points": 100},
            ],
        ),
        ("PRIORITY", None, True, 25, {"level": "high", "points": 10}),
        ("UNIQUE", None, False, -1, None),
    ],
    ids=lambda v: str(v),
)
def test_each_hit_policy_gives_the_dmn_result(
    engine: Gmpflow, deploy, policy, aggregation, points, x, expected
) -> None:
    deploy(policy_table(policy, aggregation, points))
    assert engine.evaluate_decision("policy", {"x": x})["value"] == expected


POINTS_ONLY = TABLE.replace(
    """<output id="out_level" name="level" typeRef="string">
        <outputValues><text>"high", "medium", "low"</text></outputValues>
      </output>""",
    '<output id="out_points" name="points" typeRef="number"/>',
)
assert POINTS_ONLY != TABLE


@pytest.mark.parametrize(
    ("aggregation", "x", "expected"),
    [
        ("SUM", 25, 111),
        ("MIN", 25, 1),
        ("MAX", 15, 10),
        ("COUNT", 25, 3),
        ("SUM", -1, None),
        ("COUNT", -1, 0),
    ],
)
def test_collect_aggregates_the_matching_rules(engine: Gmpflow, deploy, aggregation, x, expected) -> None:
    text = POINTS_ONLY.format(
        policy="COLLECT", aggregation=f' aggregation="{aggregation}"', second_output="", o1="", o2="", o3=""
    )
    for old, new in (('"low"', "1"), ('"high"', "10"), ('"medium"', "100")):
        text = text.replace(f"<text>{old}</text></outputEntry>", f"<text>{new}</text></outputEntry>")
    deploy({"policy.dmn": text})
    result = engine.evaluate_decision("policy", {"x": x})
    assert result["value"] == expected
    assert result["variables"] == {"Policy": expected}


def test_unique_with_several_matching_rules_is_an_error_not_the_first_match(engine: Gmpflow, deploy) -> None:
    deploy(policy_table("UNIQUE"))
    with pytest.raises(ScriptFailed) as failed:
        engine.evaluate_decision("policy", {"x": 15})
    assert failed.value.code == "decision_failed"
    assert "rules 1, 2 match" in failed.value.message


def test_any_needs_the_matching_rules_to_agree(engine: Gmpflow, deploy) -> None:
    deploy(policy_table("ANY"))
    assert engine.evaluate_decision("policy", {"x": 5})["value"] == "low"
    with pytest.raises(ScriptFailed) as failed:
        engine.evaluate_decision("policy", {"x": 15})
    assert failed.value.code == "decision_failed"
    assert "different outputs" in failed.value.message


# -- FEEL -------------------------------------------------------------------------------------------------

ENTRY = """<?xml version="1.0" encoding="UTF-8"?>
<definitions xmlns="https://www.omg.org/spec/DMN/20191111/MODEL/" id="entry_defs" name="Entry"
             namespace="http://gmpflow.example/dmn">
  <inputData id="in_value" name="Sample Value"/>
  <decision id="entry" name="Entry">
    <decisionTable id="entry_table" hitPolicy="FIRST">
      <input id="in_v" label="v">
        <inputExpression id="in_v_expr" typeRef="{type}"><text>Sample Value</text></inputExpression>
      </input>
      <output id="out_hit" name="hit" typeRef="string"/>
      <rule id="r1"><inputEntry id="r1_in"><text>{entry}</text></inputEntry>
        <outputEntry id="r1_out"><text>{output}</text></outputEntry></rule>
      <rule id="r2"><inputEntry id="r2_in"><text>-</text></inputEntry>
        <outputEntry id="r2_out"><text>"no"</text></outputEntry></rule>
    </decisionTable>
  </decision>
</definitions>
"""


def entry_dmn(entry: str, output: str = '"yes"', type_ref: str = "number") -> dict[str, str]:
    from xml.sax.saxutils import escape

    return {"entry.dmn": ENTRY.format(entry=escape(entry), output=escape(output), type=type_ref)}


@pytest.mark.parametrize(
    ("entry", "value", "hit"),
    [
        ("< 5", 4, True),
        ("< 5", 5, False),
        ("<= 5", 5, True),
        ("!= 5", 4, True),
        ("[1..10]", 10, True),
        ("[1..10]", 1, True),
        ("(1..10]", 1, False),
        ("]1..10[", 10, False),
        ("[1..10)", 9.5, True),
        ("1, 3, 5", 3, True),
        ("1, 3, 5", 4, False),
        ("not(1, 3)", 4, True),
        ("not(1, 3)", 3, False),
        ("not(< 3)", 5, True),
        ("-", 99, True),
        ("? < 5", 3, True),
        ("4 < ? < 6", 5, True),
        ("4 < ? < 6", 6, False),
        ("? * 2 = 8", 4, True),
        ("> 2 ** 3", 9, True),
        ("-1", -1, True),
        ("> -1.5", -1, True),
        ("null", None, True),
        ("0.1 + 0.2", 0.3, True),
    ],
    ids=lambda v: repr(v),
)
def test_a_feel_input_entry_tests_the_input_value(engine: Gmpflow, deploy, entry, value, hit) -> None:
    deploy(entry_dmn(entry))
    assert engine.evaluate_decision("entry", {"Sample Value": value})["value"] == ("yes" if hit else "no")


@pytest.mark.parametrize(
    ("entry", "value", "hit"),
    [
        ('"a", "b"', "b", True),
        ('"a", "b"', "c", False),
        ('not("a", "b")', "c", True),
        ('"say \\"hi\\""', 'say "hi"', True),
    ],
)
def test_a_feel_input_entry_tests_strings(engine: Gmpflow, deploy, entry, value, hit) -> None:
    deploy(entry_dmn(entry, type_ref="string"))
    assert engine.evaluate_decision("entry", {"Sample Value": value})["value"] == ("yes" if hit else "no")


@pytest.mark.parametrize(
    ("entry", "value", "hit"),
    [
        ('>= date("2026-01-01")', "2026-03-01", True),
        ('>= date("2026-01-01")', "2025-12-31", False),
        ('[date("2026-01-01")..date("2026-01-31")]', "2026-01-31", True),
    ],
    ids=lambda v: repr(v),
)
def test_a_feel_input_entry_compares_dates_given_as_iso_text(
    engine: Gmpflow, deploy, entry, value, hit
) -> None:
    deploy(entry_dmn(entry, type_ref="date"))
    assert engine.evaluate_decision("entry", {"Sample Value": value})["value"] == ("yes" if hit else "no")


@pytest.mark.parametrize(
    ("type_ref", "entry", "value", "hit"),
    [
        ("dateTime", '> date and time("2026-01-31T10:00:00Z")', "2026-01-31T10:00:01Z", True),
        ("dateTime", '> date and time("2026-01-31T10:00:00Z")', "2026-01-31T09:59:59Z", False),
        ("date and time", '< date and time("2026-01-31T10:00:00+00:00")', "2026-01-31T09:00:00Z", True),
        ("date", '< date("2026-10-01")', "2026-09-30", True),
    ],
    ids=lambda v: repr(v),
)
def test_an_input_typed_date_and_time_given_as_iso_text_is_compared_as_a_date_and_time(
    engine: Gmpflow, deploy, type_ref, entry, value, hit
) -> None:
    deploy(entry_dmn(entry, type_ref=type_ref))
    assert engine.evaluate_decision("entry", {"Sample Value": value})["value"] == ("yes" if hit else "no")


@pytest.mark.parametrize(
    ("type_ref", "value", "kind"),
    [("date", "31/01/2026", "date"), ("date", "2026-01-31T10:00:00", "date"),
     ("dateTime", "yesterday", "date and time")],
)
def test_an_input_typed_date_that_is_not_iso_text_is_refused_not_compared_as_text(
    engine: Gmpflow, deploy, type_ref, value, kind
) -> None:
    deploy(entry_dmn('>= date("2026-01-01")' if kind == "date" else
                     '>= date and time("2026-01-01T00:00:00Z")', type_ref=type_ref))
    with pytest.raises(ScriptFailed) as failed:
        engine.evaluate_decision("entry", {"Sample Value": value})
    assert failed.value.code == "decision_failed"
    assert f"the input 'v' is typed {kind}, but its value {value!r} is not an ISO {kind}" in (
        failed.value.message)


@pytest.mark.parametrize(
    ("type_ref", "entry", "value", "hit"),
    [
        ("dayTimeDuration", "> duration(\"PT10H\")", "PT12H", True),
        ("dayTimeDuration", "> duration(\"PT10H\")", "PT8H", False),  # as text, "PT8H" > "PT10H"
        ("days and time duration", "duration(\"P1D\")", "PT24H", True),
        ("days and time duration", "[duration(\"PT1H\")..duration(\"P1D\")]", "PT90M", True),
        ("yearMonthDuration", "< duration(\"P1Y\")", "P11M", True),
        ("years and months duration", "duration(\"P1Y\")", "P12M", True),
        ("years and months duration", "> duration(\"P5M\")", "P8M", True),
    ],
    ids=lambda v: repr(v),
)
def test_an_input_typed_duration_given_as_iso_text_is_compared_as_a_duration(
    engine: Gmpflow, deploy, type_ref, entry, value, hit
) -> None:
    deploy(entry_dmn(entry, type_ref=type_ref))
    assert engine.evaluate_decision("entry", {"Sample Value": value})["value"] == ("yes" if hit else "no")


@pytest.mark.parametrize(
    ("type_ref", "value"),
    [("dayTimeDuration", "10 hours"), ("dayTimeDuration", "P1M"), ("yearMonthDuration", "P1D"),
     ("yearMonthDuration", "P")],
)
def test_an_input_typed_duration_that_is_not_its_iso_text_is_refused_not_compared_as_text(
    engine: Gmpflow, deploy, type_ref, value
) -> None:
    deploy(entry_dmn('> duration("PT1H")', type_ref=type_ref))
    with pytest.raises(ScriptFailed) as failed:
        engine.evaluate_decision("entry", {"Sample Value": value})
    kind = "days and time duration" if type_ref.startswith("day") else "years and months duration"
    assert failed.value.code == "decision_failed"
    assert f"the input 'v' is typed {kind}, but its value {value!r} is not an ISO {kind}" in (
        failed.value.message)


@pytest.mark.parametrize(
    ("output", "value", "expected"),
    [
        ('date("2026-01-31") + duration("P1D")', 1, "2026-02-01"),
        ('date("2026-01-31") + duration("P1M")', 1, "2026-02-28"),  # the month's last day, not March 3
        ('date("2026-03-31") - duration("P1Y1M")', 1, "2025-02-28"),
        ('date("2026-03-01") - date("2026-02-01")', 1, "P28D"),
        ('date and time("2026-01-31T10:00:00Z") - date and time("2026-01-30T08:30:00Z")', 1, "P1DT1H30M"),
        ('duration("PT1H") * Sample Value', 3, "PT3H"),
        ('Sample Value * duration("P1M")', 14, "P1Y2M"),
        ('duration("P1D") / duration("PT6H")', 1, 4),
        ('duration("P1D") - duration("PT1H")', 1, "PT23H"),
        ('-duration("P1D")', 1, "-P1D"),
        ('duration("P1D") > duration("PT23H")', 1, True),
        ('duration("P1M") > duration("P1D")', 1, None),  # a month has no length in days: no order
        ('duration("P1D") + duration("P1M")', 1, None),
        ('date("2026-01-01") + 1', 1, None),
        ('duration("P1Y2DT3H")', 1, None),  # neither a years and months nor a days and time duration
        ('years and months duration(date("2025-01-31"), date("2026-03-01"))', 1, "P1Y1M"),
        ('string(duration("PT90M"))', 1, "PT1H30M"),
    ],
    ids=lambda v: repr(v),
)
def test_feel_durations_move_dates_and_come_out_as_iso_text(engine: Gmpflow, deploy, output, value, expected):
    deploy(entry_dmn("-", output))
    assert engine.evaluate_decision("entry", {"Sample Value": value})["value"] == expected


DEFAULTS = ENTRY.replace('<output id="out_hit" name="hit" typeRef="string"/>',
                         '<output id="out_hit" name="hit" typeRef="string">'
                         '<defaultOutputEntry id="out_hit_default"><text>"none"</text></defaultOutputEntry>'
                         '</output>').replace('<text>-</text></inputEntry>',
                                              '<text>&gt; 100</text></inputEntry>')


@pytest.mark.parametrize(("policy", "expected"),
                         [("FIRST", "none"), ("UNIQUE", "none"), ("COLLECT", ["none"])])
def test_no_matching_rule_gives_the_outputs_default_entries(engine: Gmpflow, deploy, policy, expected):
    deploy({"entry.dmn": DEFAULTS.format(entry="&lt; 5", output='"yes"', type="number")
            .replace('hitPolicy="FIRST"', f'hitPolicy="{policy}"')})
    assert engine.evaluate_decision("entry", {"Sample Value": 50})["value"] == expected
    assert engine.evaluate_decision("entry", {"Sample Value": 1})["value"] == ("yes" if policy != "COLLECT"
                                                                               else ["yes"])


def test_collect_with_an_aggregation_and_no_matching_rule_gives_the_default_not_null(engine: Gmpflow, deploy):
    """The TCK's 0020-vacation-days: COLLECT MAX of extra days, no rule matching, is its default 0."""
    deploy({"entry.dmn": DEFAULTS.format(entry="&lt; 5", output="5", type="number")
            .replace('hitPolicy="FIRST"', 'hitPolicy="COLLECT" aggregation="MAX"')
            .replace('typeRef="string">', 'typeRef="number">').replace('"none"', "0")
            .replace('<text>"no"</text>', "<text>3</text>")})
    assert engine.evaluate_decision("entry", {"Sample Value": 50})["value"] == 0
    assert engine.evaluate_decision("entry", {"Sample Value": 200})["value"] == 3


@pytest.mark.parametrize(
    ("output", "value", "expected"),
    [
        ('if Sample Value > 10 then "big" else "small"', 11, "big"),
        ("Sample Value * 2 + 1", 4, 9),
        ("Sample Value / 4", 2, 0.5),
        ("Sample Value / 0", 2, None),
        ("Sample Value > 1 and Sample Value < 3", 2, True),
        ("Sample Value < 1 or null", 2, None),
        ('string(Sample Value) + " kg"', 2, "2 kg"),
        ('date("2026-01-01")', 1, "2026-01-01"),
        ("[1, 2, Sample Value]", 3, [1, 2, 3]),
        ("Sample Value between 1 and 5", 5, True),
        ("Sample Value in [1..4]", 5, False),
        ("not(Sample Value = 5)", 5, False),
        ("-Sample Value ** 2", 3, 9),
    ],
    ids=lambda v: repr(v),
)
def test_a_feel_output_cell_is_evaluated(engine: Gmpflow, deploy, output, value, expected) -> None:
    deploy(entry_dmn("-", output))
    assert engine.evaluate_decision("entry", {"Sample Value": value})["value"] == expected


@pytest.mark.parametrize(
    ("entry", "construct"),
    [
        ("for i in [1, 2] return i", "for loops"),
        ("some i in [1, 2] satisfies i > 1", "some ... satisfies"),
        ("{a: 1}", "contexts"),
        ("[1, 2][1]", "filter expressions"),
        ('string join(["a"], ",")', "FEEL function 'string join'"),
        ("x instance of number", "instance of"),
        ('append([1], 2)', "FEEL function 'append'"),
    ],
    ids=lambda v: repr(v),
)
def test_feel_that_gmpflow_does_not_evaluate_is_refused_at_lint_by_name(
    engine: Gmpflow, deploy, entry, construct
) -> None:
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        deploy(entry_dmn("-", entry))
    problems = refused.value.context["problems"]
    assert [(p["code"], p["element_id"]) for p in problems] == [("feel_unsupported", "r1_out")], problems
    assert construct in problems[0]["message"]
    assert snapshot(engine.db) == before


@pytest.mark.parametrize("call", ['flatten([["w", "x"], "y"])', "concatenate([1], [2])"])
def test_a_file_read_as_python_calling_a_function_the_sandbox_lacks_is_refused_at_lint(
    engine: Gmpflow, deploy, call
) -> None:
    """Every cell is Python syntax too (the DMN TCK's list functions), so the file reads as Python, where the
    call would fail with NameError on every evaluation: lint names the function instead."""
    python_like = ENTRY.replace("<text>Sample Value</text>", "<text>value</text>").replace(
        '<text>"no"</text>', "<text>'no'</text>")
    with pytest.raises(DefinitionError) as refused:
        deploy({"entry.dmn": python_like.format(entry="-", output=call, type="number")})
    problems = refused.value.context["problems"]
    assert [(p["code"], p["element_id"]) for p in problems] == [("feel_unsupported", "r1_out")], problems
    assert f"'{call.split('(')[0]}' is neither a FEEL function gmpflow supports" in problems[0]["message"]


@pytest.mark.parametrize(
    ("entry", "words"),
    [
        ('__import__("os")', "'__import__' is not allowed"),
        ("Sample Value.__class__", "'__class__' is not allowed"),
        ("2 ** 10 ** 8", "refused before it runs"),
    ],
    ids=lambda v: repr(v),
)
def test_feel_never_reaches_python_and_what_the_sandbox_refuses_is_refused_in_feel(
    engine, deploy, entry, words
) -> None:
    with pytest.raises(DefinitionError) as refused:
        deploy(entry_dmn("-", entry))
    problems = refused.value.context["problems"]
    assert [p["code"] for p in problems] == ["script_rejected"], problems
    assert words in problems[0]["message"]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        (('hitPolicy="FIRST"', 'hitPolicy="FIRST" aggregation="SUM"'), "allowed only with COLLECT"),
        (('hitPolicy="FIRST"', 'hitPolicy="PRIORITY"'), "give the outputs their lists of values"),
        (('hitPolicy="FIRST"', 'hitPolicy="SOMETIMES"'), "not a DMN 1.3 hit policy"),
        (
            (
                "<decisionTable",
                '<knowledgeRequirement id="kr"><requiredKnowledge href="#bkm"/></knowledgeRequirement>'
                "<decisionTable",
            ),
            "business knowledge models",
        ),
    ],
    ids=lambda v: str(v),
)
def test_a_table_gmpflow_cannot_evaluate_right_is_refused_at_lint(
    engine: Gmpflow, deploy, change, words
) -> None:
    files = entry_dmn("-")
    files["entry.dmn"] = files["entry.dmn"].replace(*change)
    with pytest.raises(DefinitionError) as refused:
        deploy(files)
    problems = refused.value.context["problems"]
    assert problems and all(p["code"] == "dmn_unsupported" for p in problems), problems
    assert any(words in p["message"] for p in problems), problems


def test_spiffworkflow_python_cells_still_run_in_the_sandbox(engine: Gmpflow, deploy) -> None:
    """A file drawn in SpiffArena (Python cells, '?' tests) reads as SpiffWorkflow reads it."""
    python = ENTRY.replace("Sample Value", "sample").replace('name="sample"', 'name="Sample"')
    deploy(
        {
            "entry.dmn": python.format(
                entry="4 &lt; ? &lt; 6", output="'yes' if sample == 5 else 'five?'", type="number"
            )
        }
    )
    assert engine.evaluate_decision("entry", {"sample": 5})["value"] == "yes"
    assert engine.evaluate_decision("entry", {"sample": 7})["value"] == "no"
