"""Specifications of the expression and script sandbox: escapes are refused, ordinary code works."""

from __future__ import annotations

import sys
import time
from datetime import datetime
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest

from engine.errors import ConnectorError, ScriptFailed, ScriptRejected
from engine.sandbox import SandboxEnvironment, SandboxScriptEngine, check_expression, check_script

# (id, code, mode, expected error, fragment of its message)
ESCAPES = [
    ("dunder-import-call", "__import__('os').system('id')", "eval", ScriptRejected,
     "names starting with '_' are not allowed: __import__"),
    ("import-statement", "import os", "exec", ScriptRejected, "imports are not allowed in scripts"),
    ("from-import", "from os import system", "exec", ScriptRejected, "imports are not allowed in scripts"),
    ("import-builtins", "import builtins", "exec", ScriptRejected, "imports are not allowed in scripts"),
    ("subclasses-via-bases", "().__class__.__bases__[0].__subclasses__()", "eval", ScriptRejected,
     "names starting with '_' are not allowed: __subclasses__"),
    ("subclasses-in-comprehension", "[c for c in ().__class__.__base__.__subclasses__()]", "eval",
     ScriptRejected, "names starting with '_' are not allowed"),
    ("mro-of-list", "[].__class__.__mro__", "eval", ScriptRejected,
     "names starting with '_' are not allowed"),
    ("getattr-dunder", "getattr(1, '__class__')", "eval", ScriptRejected, "'getattr()' is not available"),
    ("open-file", "open('/etc/passwd').read()", "eval", ScriptRejected, "'open()' is not available"),
    ("eval", "eval('1')", "eval", ScriptRejected, "'eval()' is not available"),
    ("exec", "exec('x=1')", "exec", ScriptRejected, "'exec()' is not available"),
    ("compile", "compile('1','f','eval')", "eval", ScriptRejected, "'compile()' is not available"),
    ("globals", "globals()", "eval", ScriptRejected, "'globals()' is not available"),
    ("locals", "locals()", "eval", ScriptRejected, "'locals()' is not available"),
    ("vars", "vars()", "eval", ScriptRejected, "'vars()' is not available"),
    ("type", "type(1)", "eval", ScriptRejected, "'type()' is not available"),
    ("breakpoint", "breakpoint()", "eval", ScriptRejected, "'breakpoint()' is not available"),
    ("input", "input()", "eval", ScriptRejected, "'input()' is not available"),
    ("aliased-getattr", "g = getattr\ng(1, 'real')", "exec", ScriptRejected, "'getattr' is not available"),
    ("format-attribute-trick", "'{0.__class__}'.format(1)", "eval", ScriptRejected,
     "the attribute 'format' is not allowed in scripts; use an f-string"),
    ("format-map-trick", "'{x.__class__}'.format_map({'x': 1})", "eval", ScriptRejected,
     "the attribute 'format_map' is not allowed"),
    ("generator-frame", "(x for x in []).gi_frame", "eval", ScriptRejected,
     "the attribute 'gi_frame' is not allowed"),
    ("generator-frame-back", "(x for x in []).gi_frame.f_back", "eval", ScriptRejected,
     "the attribute 'f_back' is not allowed"),
    ("frame-globals", "(x for x in []).gi_frame.f_globals", "eval", ScriptRejected, "not allowed"),
    ("traceback-frame", "e.tb_frame", "eval", ScriptRejected, "the attribute 'tb_frame' is not allowed"),
    ("coroutine-frame", "c.cr_frame", "eval", ScriptRejected, "the attribute 'cr_frame' is not allowed"),
    ("async-generator-frame", "a.ag_frame", "eval", ScriptRejected,
     "the attribute 'ag_frame' is not allowed"),
    ("lambda-code", "f = lambda: 0\nc = f.__code__", "exec", ScriptRejected,
     "names starting with '_' are not allowed: __code__"),
    ("datetime-dict", "datetime.now().__dict__", "eval", ScriptRejected, "not allowed: __dict__"),
    ("datetime-subclasses", "datetime.__subclasses__", "eval", ScriptRejected, "not allowed: __subclasses__"),
    ("dict-init", "dict.__init__", "eval", ScriptRejected, "not allowed: __init__"),
    ("builtins-subscript", "__builtins__['open']", "eval", ScriptRejected, "not allowed: __builtins__"),
    ("str-mro", "str.mro()[1]", "eval", ScriptRejected, "the attribute 'mro' is not allowed"),
    ("class-definition", "class A:\n    pass", "exec", ScriptRejected, "class definitions are not allowed"),
    ("bare-except-swallowing-timeout", "try:\n    x = 1\nexcept:\n    pass", "exec", ScriptRejected,
     "a bare 'except:' is not allowed"),
    ("print", "print('x')", "exec", ScriptRejected, "'print()' is not available"),
    ("huge-string", "'a' * 10**10", "eval", ScriptFailed, "'*' would create more than 1,000,000"),
    ("huge-power", "10**10**10", "eval", ScriptFailed, "'**' would create an integer of more than"),
    ("huge-shift", "1 << 10**9", "eval", ScriptFailed, "'<<' would create an integer"),
    ("huge-range", "list(range(10**12))", "eval", ScriptFailed, "range() would create more than"),
    ("doubling-loop", "s = 'ab' * 1000\nfor i in range(20):\n    s = s + s", "exec", ScriptFailed,
     "'+' would create more than"),
    ("huge-join", "','.join(['a' * 1000] * 10000)", "eval", ScriptFailed, "join() would create"),
    ("huge-unbound-join", "str.join(',', ['a' * 1000] * 10000)", "eval", ScriptFailed, "join() would create"),
    ("huge-ljust", "'a'.ljust(10**10)", "eval", ScriptFailed, "ljust() would create"),
    ("huge-format-width", "f'{1:>999999999}'", "eval", ScriptFailed, "widths and precisions above"),
    ("huge-percent-width", "'%999999999d' % 1", "eval", ScriptFailed, "widths and precisions above"),
    ("sum-of-lists", "sum([[1] * 10] * 10, [])", "eval", ScriptFailed, "sum() adds numbers only"),
    ("endless-loop", "while True: pass", "exec", ScriptFailed, "stopped after 0.2 s"),
    ("endless-recursion-free-blowup", "def f(n):\n    return 1 if n == 0 else f(n - 1) + f(n - 1)\nf(60)",
     "exec", ScriptFailed, "stopped after 0.2 s"),
    ("caught-timeout-keeps-raising",
     "while True:\n    try:\n        while True: pass\n    except Exception:\n        pass",
     "exec", ScriptFailed, "stopped after 0.2 s"),
]


def _run(code: str, mode: str, data: dict[str, Any] | None = None, *, max_seconds: float = 1.0) -> Any:
    env = SandboxEnvironment(max_seconds=max_seconds)
    data = {} if data is None else data
    return env.evaluate(code, data) if mode == "eval" else env.execute(code, data)


@pytest.mark.parametrize(("code", "mode", "error", "message"), [case[1:] for case in ESCAPES],
                         ids=[case[0] for case in ESCAPES])
def test_escape_attempt_is_refused_with_a_clear_message(code: str, mode: str, error: type[Exception],
                                                        message: str) -> None:
    with pytest.raises(error) as caught:
        _run(code, mode, max_seconds=0.2)
    assert message in caught.value.message
    assert caught.value.context.get("line") == getattr(caught.value, "line", caught.value.context.get("line"))
    assert caught.value.context.get("line") is not None


@pytest.mark.parametrize(("code", "mode"), [(c[1], c[2]) for c in ESCAPES if c[3] is ScriptRejected],
                         ids=[c[0] for c in ESCAPES if c[3] is ScriptRejected])
def test_linter_check_refuses_the_same_code_without_running_it(code: str, mode: str) -> None:
    check = check_expression if mode == "eval" else check_script
    with pytest.raises(ScriptRejected) as caught:
        check(code, element_id="Task_1", file="model.bpmn")
    assert (caught.value.element_id, caught.value.file) == ("Task_1", "model.bpmn")
    assert caught.value.line is not None


def test_linter_reports_the_line_of_the_refused_statement() -> None:
    with pytest.raises(ScriptRejected) as caught:
        check_script("x = 1\ny = 2\nimport os")
    assert (caught.value.line, caught.value.message) == (3, "imports are not allowed in scripts")


def test_linter_reports_a_syntax_error_with_its_line() -> None:
    with pytest.raises(ScriptRejected, match="not valid Python") as caught:
        check_script("x = 1\nif x\n    y = 2")
    assert caught.value.line == 2


def test_a_string_in_task_data_is_data_never_code() -> None:
    payload = "__import__('os').system('touch /tmp/pwned')"
    assert _run("cmd", "eval", {"cmd": payload}) == payload
    assert _run("cmd + '!'", "eval", {"cmd": payload}) == payload + "!"


def test_task_data_keys_starting_with_underscore_cannot_replace_the_guards() -> None:
    data = {"_getattr_": "not a function", "__builtins__": {"open": open}, "x": "abc"}
    assert _run("x.upper()", "eval", data) == "ABC"


EXPRESSIONS = [
    ("arithmetic", "(a + 2) * 3 - a ** 2 / 4", {"a": 2}, 11.0),
    ("comparison-chain", "1 < a <= 2 and a != 3", {"a": 2}, True),
    ("item-access", "order['lines'][1]['qty']", {"order": {"lines": [{"qty": 1}, {"qty": 5}]}}, 5),
    ("comprehension", "[q * 2 for q in qtys if q > 1]", {"qtys": [1, 2, 3]}, [4, 6]),
    ("dict-comprehension", "{k: v for k, v in pairs}", {"pairs": [("a", 1)]}, {"a": 1}),
    ("f-string", "f'{lot}-{qty:03d}'", {"lot": "L7", "qty": 4}, "L7-004"),
    ("builtins", "max(sorted(xs)) + min(xs) + sum(xs) + len(xs) + abs(-1)", {"xs": [3, 1, 2]}, 14),
    ("datetime-arithmetic", "(datetime(2024, 1, 31) + timedelta(days=1)).month", {}, 2),
    ("date-class", "date(2024, 2, 29).isoformat()", {}, "2024-02-29"),
    ("decimal", "Decimal('0.1') + Decimal('0.2')", {}, Decimal("0.3")),
    ("isinstance", "isinstance(x, (int, float)) and not isinstance(x, str)", {"x": 1.5}, True),
    ("bounded-range", "sum(range(1000))", {}, 499500),
    ("moderate-string-repeat", "len('ab' * 1000)", {}, 2000),
    ("string-methods", "name.strip().upper().replace('A', 'B')", {"name": " abc "}, "BBC"),
]


@pytest.mark.parametrize(("code", "data", "expected"), [c[1:] for c in EXPRESSIONS],
                         ids=[c[0] for c in EXPRESSIONS])
def test_ordinary_expression_evaluates(code: str, data: dict[str, Any], expected: Any) -> None:
    assert _run(code, "eval", data) == expected


def test_script_updates_the_task_data_and_leaves_no_functions_behind() -> None:
    data: dict[str, Any] = {"lines": [1, 2], "total": 0, "obsolete": True, "_internal": 7}
    script = (
        "def double(v):\n"
        "    return v * 2\n"
        "for v in lines:\n"
        "    total += double(v)\n"
        "lines.append(9)\n"
        "summary = {'n': len(lines)}\n"
        "summary['ok'] = total > 3\n"
        "label = f'{total} units'\n"
        "when = datetime(2024, 1, 1) + timedelta(hours=2)\n"
        "del obsolete\n"
    )
    assert _run(script, "exec", data) is True
    assert data == {"lines": [1, 2, 9], "total": 6, "_internal": 7, "v": 2, "summary": {"n": 3, "ok": True},
                    "label": "6 units", "when": datetime(2024, 1, 1, 2)}


def test_failed_script_leaves_the_task_data_unchanged() -> None:
    data = {"x": 1}
    with pytest.raises(ScriptFailed):
        _run("x = 2\ny = 1 / 0", "exec", data)
    assert data == {"x": 1}


def test_runtime_error_carries_the_line_and_the_error() -> None:
    with pytest.raises(ScriptFailed) as caught:
        _run("a = 1\nb = 0\nc = a / b", "exec")
    assert caught.value.context["line"] == 3
    assert caught.value.message == "line 3: ZeroDivisionError: division by zero"


def test_script_may_raise_and_catch_named_errors() -> None:
    data: dict[str, Any] = {"raw": "x"}
    _run("try:\n    n = int(raw)\nexcept ValueError:\n    n = -1", "exec", data)
    assert data["n"] == -1


def test_writing_attributes_of_objects_is_refused() -> None:
    with pytest.raises(ScriptFailed, match="attribute-less object"):
        _run("d = datetime(2024, 1, 1)\nd.year = 3", "exec")


def test_timeout_restores_the_previous_trace_function() -> None:
    def tracer(frame: Any, event: str, arg: Any) -> None:
        return None

    previous = sys.gettrace()
    sys.settrace(tracer)
    try:
        with pytest.raises(ScriptFailed):
            _run("while True: pass", "exec", max_seconds=0.05)
        assert sys.gettrace() is tracer
    finally:
        sys.settrace(previous)


def test_evaluating_a_small_expression_costs_well_under_50_microseconds() -> None:
    env = SandboxEnvironment()
    data = {"x": 7, **{f"field{i}": i for i in range(30)}}
    env.evaluate("x > 5", data)  # compile once
    runs = 2000
    started = time.perf_counter()
    for _ in range(runs):
        env.evaluate("x > 5", data)
    assert (time.perf_counter() - started) / runs < 50e-6


def _task(data: dict[str, Any], bpmn_id: str = "Gateway_release") -> Any:
    return SimpleNamespace(data=data, task_spec=SimpleNamespace(bpmn_id=bpmn_id, name=bpmn_id))


@pytest.mark.parametrize(("call", "error"), [
    (lambda engine, task: engine.evaluate(task, "__import__('os')"), ScriptRejected),
    (lambda engine, task: engine.evaluate(task, "1 / 0"), ScriptFailed),
    (lambda engine, task: engine.execute(task, "import os"), ScriptRejected),
    (lambda engine, task: engine.execute(task, "x = missing"), ScriptFailed),
], ids=["evaluate-rejected", "evaluate-failed", "execute-rejected", "execute-failed"])
def test_engine_errors_propagate_unwrapped_with_the_element_id(call: Any, error: type[Exception]) -> None:
    with pytest.raises(error) as caught:
        call(SandboxScriptEngine(), _task({}))
    assert caught.value.context["element_id"] == "Gateway_release"


def test_engine_runs_scripts_against_the_task_data() -> None:
    task = _task({"qty": 3})
    engine = SandboxScriptEngine()
    engine.execute(task, "doubled = qty * 2")
    assert engine.evaluate(task, "doubled == 6") is True


def test_service_call_without_a_handler_fails_clearly() -> None:
    with pytest.raises(ConnectorError, match="no service handler is configured") as caught:
        SandboxScriptEngine().call_service(_task({}, "Task_erp"), operation_name="erp.post")
    assert caught.value.code == "service_handler_missing"
    assert "Task_erp" in caught.value.message


def test_service_call_is_delegated_to_the_handler() -> None:
    calls = []
    engine = SandboxScriptEngine(service_handler=lambda task, **kw: calls.append(kw) or '{"ok": true}')
    assert engine.call_service(_task({}), operation_name="erp.post", operation_params={}) == '{"ok": true}'
    assert calls == [{"operation_name": "erp.post", "operation_params": {}}]
