"""Specifications of ``locals()`` in the sandbox: a fresh dict copying the script's data variables (the task
data and the names the script assigned), never a guard, a builtin, an injected helper or anything that
leads to a frame, code or a class. Its refusals (arguments, the bare name, globals()/vars()/dir()) are rows
of ESCAPES in test_sandbox.py."""

from __future__ import annotations

import math
import uuid
from datetime import date, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest

from engine.errors import ScriptFailed
from engine.sandbox import SandboxEnvironment
from engine.sandbox.limits import MAX_ITEMS, Refused
from engine.sandbox.variables import data_locals


def _helper() -> int:
    return 1


# what a deployment or SpiffWorkflow may put beside the task data: none of it is the script's
INJECTED = {"helper": _helper, "a_module": math, "a_constant": 5, "a_class": dict}


def _execute(script: str, data: dict[str, Any], external: dict[str, Any] | None = None) -> dict[str, Any]:
    SandboxEnvironment(INJECTED).execute(script, data, external)
    return data


def test_the_spiffworkflow_idiom_asks_whether_the_task_data_holds_a_name():
    script = "if 'hey' in locals():\n  hey = True\nelse:\n  something_else = True"
    assert _execute(script, {"hey": False}) == {"hey": True}
    assert _execute(script, {}) == {"something_else": True}


def test_it_holds_the_task_data_and_the_names_the_script_assigned_so_far_and_nothing_injected():
    data = _execute("before = 1\nseen = locals()\nafter = 2", {"amount": 3, "lot": {"id": "L1"}},
                    external={"from_the_caller": 7})
    assert data["seen"] == {"amount": 3, "lot": {"id": "L1"}, "before": 1}


def test_an_expression_sees_the_task_data_only():
    environment = SandboxEnvironment(INJECTED)
    assert environment.evaluate("locals()", {"amount": 3}, {"from_the_caller": 7}) == {"amount": 3}


def test_an_injected_name_the_script_assigns_anew_is_the_scripts_variable():
    data = _execute("a_constant = 6\nseen = locals()\ndel a_constant", {})
    assert data == {"seen": {"a_constant": 6}}


def test_it_is_a_fresh_copy_changing_it_changes_no_variable():
    script = ("snapshot = locals()\nsnapshot['amount'] = 100\nsnapshot['created'] = 1\n"
              "del snapshot['lot']\nsame = locals() is locals()")
    data = _execute(script, {"amount": 3, "lot": "L1"})
    assert (data["amount"], data["lot"], "created" in data, data["same"]) == (3, "L1", False, False)
    assert data["snapshot"] == {"amount": 100, "created": 1}


def test_no_guard_builtin_or_injected_helper_is_in_it():
    assert _execute("seen = locals()", {}) == {"seen": {}}
    data = _execute("hidden = [n for n in ('_getattr_', '_write_', '_getiter_', '__builtins__', '_locals_', "
                    "'helper', 'a_module', 'a_class', 'print', 'len') if n in locals()]", {})
    assert data["hidden"] == []


def test_only_data_is_in_it_never_a_function_class_module_generator_error_or_what_holds_one():
    script = ("def probe():\n"
              "    fn = lambda: 0\n"
              "    numbers = (n for n in [1, 2])\n"
              "    alias = str\n"
              "    maths = math\n"
              "    holding_a_function = [1, [2, fn]]\n"
              "    keyed_by_a_class = {int: 1}\n"
              "    plain = [1, 'two', None, {'three': (3.0, True)}]\n"
              "    try:\n"
              "        1 / 0\n"
              "    except ZeroDivisionError as error:\n"
              "        return locals()\n"
              "seen = probe()")
    assert _execute(script, {})["seen"] == {"plain": [1, "two", None, {"three": (3.0, True)}]}


def test_the_kinds_of_data_a_script_may_hold_are_in_it():
    values = {"text": "t", "blob": b"b", "number": 1, "real": 1.5, "yes": True, "nothing": None,
              "amount": Decimal("1.5"), "when": datetime(2026, 1, 1), "day": date(2026, 1, 1),
              "span": timedelta(days=1), "key": uuid.UUID(int=1), "tags": {"a"}, "pair": (1, 2),
              "frozen": frozenset({1}), "numbers": list(range(1000))}
    assert SandboxEnvironment().evaluate("locals()", dict(values)) == values


def test_a_comprehension_sees_its_own_variables_never_its_iterator():
    data = _execute("inner = [sorted(locals()) for item in [1]]\n"
                    "lazy = list(sorted(locals()) for item in [1])", {"amount": 3})
    assert (data["inner"], data["lazy"]) == ([["item"]], [["item"]])


def test_a_function_sees_its_own_variables_as_in_python():
    data = _execute("def f(x):\n    y = x + 1\n    return locals()\nseen = f(1)", {"amount": 3})
    assert data["seen"] == {"x": 1, "y": 2}


def test_a_shared_part_counts_once_and_a_value_holding_itself_is_data():
    shared = [1, 2]
    loop: list[Any] = []
    loop.append(loop)
    found = SandboxEnvironment().evaluate("'a' in locals() and 'loop' in locals()", {"a": [shared, shared],
                                                                                   "loop": loop})
    assert found is True


def test_a_container_found_not_data_is_not_taken_for_data_through_another_variable():
    part = [1, _helper]
    seen = SandboxEnvironment().evaluate("locals()", {"first": [part], "second": part, "third": [[part]]})
    assert seen == {}


def test_values_with_too_many_parts_to_check_are_refused_before_the_work():
    rows = [[i] for i in range(MAX_ITEMS)]
    with pytest.raises(ScriptFailed) as caught:
        SandboxEnvironment().evaluate("locals()", {"rows": rows})
    assert "locals(): the variables have more than 1,000,000 parts to check" in caught.value.message
    assert caught.value.code == "script_limit_exceeded"


def test_a_long_flat_list_is_checked_at_once():
    numbers = list(range(MAX_ITEMS))
    assert SandboxEnvironment().evaluate("len(locals()['numbers'])", {"numbers": numbers}) == MAX_ITEMS


def test_the_guard_answers_model_code_only():
    with pytest.raises(Refused, match="only available to the code of a model"):
        data_locals()


def test_iterating_its_values_finds_nothing_to_call():
    data = _execute("def f():\n    return 1\ng = f\nfound = [v for v in locals().values() "
                    "if not isinstance(v, (int, str))]\ndel f, g", {"amount": 3})
    assert data == {"amount": 3, "found": []}
