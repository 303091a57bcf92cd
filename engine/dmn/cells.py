"""The two languages a DMN file's cells may be written in, each compiled once per deployment.

- FEEL (DMN's own language), gmpflow's subset in ``engine.feel``: parsed to trees, interpreted.
- Python, as SpiffWorkflow 3.2.0 reads DMN files drawn in SpiffArena: every cell runs in the sandbox
  (``engine.sandbox``), an input entry being tested as SpiffWorkflow does (``?`` is the input value, a leading
  operator is applied to it, anything else is compared with ``==``).

Which one a file uses: ``definitions/@expressionLanguage`` when it names FEEL or Python; else FEEL when
every cell is FEEL gmpflow understands and none names Python's ``True``/``False``/``None``; else Python when
every cell compiles in the sandbox; else Python when every cell is at least Python syntax (lint then reports
what the sandbox refuses); else FEEL (and lint reports the FEEL problems).
"""

from __future__ import annotations

import ast
import re
from collections.abc import Iterator
from typing import Any

from engine import sandbox
from engine.dmn.model import Cell, DmnFile
from engine.errors import DefinitionError
from engine.feel import (
    FUNCTION_NAMES,
    Evaluator,
    FeelError,
    FeelSyntaxError,
    from_data,
    parse_expression,
    parse_unary_tests,
    to_data,
)
from engine.feel.lexer import MAX_TEXT

FEEL, PYTHON = "FEEL", "Python"
PYTHON_WORDS = {"True", "False", "None"}
INPUT_MARK = re.compile(r"\?(?=(?:[^'\"]|'[^']*'|\"[^\"]*\")*$)")  # a '?' outside quotes
INPUT_NAME = "dmninputexpr"  # SpiffWorkflow's name for the input value inside a Python cell
MAX_INPUT_MARKS = 20


def cells_of(dmn: DmnFile) -> Iterator[tuple[str, Cell]]:
    """Every expression cell of the file with its role: ``input``, ``entry``, ``output``, ``literal``,
    ``values``."""
    for decision in dmn.decisions.values():
        if decision.literal is not None:
            yield "literal", decision.literal
        table = decision.table
        if table is None:
            continue
        for column in table.inputs:
            if column.expression is not None:
                yield "input", column.expression
            if column.values is not None:
                yield "values", column.values
        for column in table.outputs:
            if column.values is not None:
                yield "values", column.values
            if column.default is not None:
                yield "output", column.default
        for rule in table.rules:
            yield from (("entry", cell) for cell in rule.inputs)
            yield from (("output", cell) for cell in rule.outputs)


def known_names(dmn: DmnFile) -> frozenset[str]:
    """Names FEEL may read with spaces in them: input data, decisions, input labels, functions."""
    names = set(dmn.input_names) | FUNCTION_NAMES
    for decision in dmn.decisions.values():
        names |= {decision.name, decision.variable}
        if decision.table is not None:
            names |= {c.name for c in decision.table.inputs}
            names |= {c.expression.text.strip() for c in decision.table.inputs if c.expression is not None}
    return frozenset(n for n in names if n)


def parse_feel(role: str, text: str, names: frozenset[str]) -> tuple[Any, ...]:
    if role in ("entry", "values"):
        return parse_unary_tests(text, names)
    if role == "output" and text.strip() in ("", "-"):
        return ("null",)
    return parse_expression(text, names)


def _names_in(node: Any) -> Iterator[str]:
    if isinstance(node, tuple):
        if node[:1] == ("name",):
            yield node[1]
        for part in node:
            yield from _names_in(part)
    elif isinstance(node, list):
        for part in node:
            yield from _names_in(part)


def calls_in(node: Any) -> Iterator[str]:
    """The names of the functions a FEEL tree calls."""
    if isinstance(node, tuple):
        if node[:1] == ("call",):
            yield node[1]
        for part in node:
            yield from calls_in(part)
    elif isinstance(node, list):
        for part in node:
            yield from calls_in(part)


def python_entry(text: str) -> str | None:
    """The Python expression SpiffWorkflow evaluates for an input entry, over ``dmninputexpr``; None: any."""
    text = text.strip()
    if text in ("", "-"):
        return None
    if "?" in text:
        return INPUT_MARK.sub(f" {INPUT_NAME} ", text)
    if text[:1] in "<>=!" or text.startswith(("in ", "not in ")):
        return f"{INPUT_NAME} {text}"
    return f"{INPUT_NAME} == ({text})"


def python_problem(role: str, text: str) -> DefinitionError | None:
    if role == "entry" and text.count("?") > MAX_INPUT_MARKS:
        return DefinitionError(
            f"An input entry may name the input value ('?') at most {MAX_INPUT_MARKS} times.",
            code="script_rejected",
        )
    code = python_entry(text) if role == "entry" else text.strip()
    if not code or role == "values":
        return None
    try:
        sandbox.check_expression(code)
    except DefinitionError as exc:
        return exc
    return _unknown_call(code)


def _unknown_call(code: str) -> DefinitionError | None:
    """A cell that calls a function the sandbox does not have (a FEEL function such as ``flatten(...)`` read
    as Python) would fail with NameError on every evaluation: task data are JSON, never callable."""
    from engine.sandbox.guards import SAFE_BUILTINS

    supported = ", ".join(sorted(FUNCTION_NAMES))
    for node in ast.walk(ast.parse(code, mode="eval")):
        called = node.func.id if isinstance(node, ast.Call) and isinstance(node.func, ast.Name) else None
        if called is not None and called not in SAFE_BUILTINS:
            return DefinitionError(
                f"'{called}' is neither a FEEL function gmpflow supports ({supported}) nor a function of the "
                "Python sandbox",
                code="feel_unsupported",
            )
    return None


def language_of(dmn: DmnFile) -> str:
    declared = (dmn.language or "").lower()
    if "python" in declared:
        return PYTHON
    if "feel" in declared:
        return FEEL
    names = known_names(dmn)
    try:
        trees = [parse_feel(role, cell.text, names) for role, cell in cells_of(dmn)]
        if not any(name in PYTHON_WORDS for tree in trees for name in _names_in(tree)) and all(
            call in FUNCTION_NAMES for tree in trees for call in calls_in(tree)
        ):
            return FEEL
    except FeelSyntaxError:
        pass
    if all(python_problem(role, cell.text) is None for role, cell in cells_of(dmn)):
        return PYTHON
    if all(_python_syntax(role, cell.text) for role, cell in cells_of(dmn)):
        return PYTHON
    return FEEL


def _python_syntax(role: str, text: str) -> bool:
    """Whether the cell parses as Python (to a tree only: nothing runs)."""
    code = python_entry(text) if role == "entry" else text.strip()
    if not code or role == "values":
        return True
    if len(code) > MAX_TEXT:
        return False
    try:
        ast.parse(code, mode="eval")
    except (SyntaxError, ValueError, RecursionError, MemoryError):
        return False
    return True


class FeelCells:
    """Evaluates a file's FEEL cells; trees are parsed once and kept by cell."""

    language = FEEL

    def __init__(self, dmn: DmnFile) -> None:
        names = known_names(dmn)
        self.trees = {id(cell): parse_feel(role, cell.text, names) for role, cell in cells_of(dmn)}

    def scope(self, data: dict[str, Any]) -> Evaluator:
        return Evaluator(from_data(data))

    def value(self, scope: Evaluator, cell: Cell) -> Any:
        return scope.value(self.trees[id(cell)])

    def test(self, scope: Evaluator, cell: Cell, tested: Any) -> bool:
        return scope.matches(self.trees[id(cell)], tested)

    def bind(self, scope: Evaluator, name: str, value: Any) -> None:
        scope.variables[name] = value

    def to_data(self, value: Any) -> Any:
        return to_data(value)

    def allowed(self, cell: Cell) -> list[Any]:
        """An outputValues cell as the list of values in priority order."""
        tree = self.trees[id(cell)]
        if tree[0] != "tests":
            return []
        scope = Evaluator({})
        return [scope.value(t[1]) for t in tree[2] if t[0] == "ut_expr"]


class PythonCells:
    """Evaluates SpiffWorkflow-style Python cells in the sandbox."""

    language = PYTHON

    def __init__(self, dmn: DmnFile) -> None:
        self.environment = sandbox.SandboxEnvironment()

    def scope(self, data: dict[str, Any]) -> dict[str, Any]:
        return dict(data)

    def value(self, scope: dict[str, Any], cell: Cell) -> Any:
        text = cell.text.strip()
        return None if text in ("", "-") else self.environment.evaluate(text, scope)

    def test(self, scope: dict[str, Any], cell: Cell, tested: Any) -> bool:
        code = python_entry(cell.text)
        return code is None or bool(self.environment.evaluate(code, scope, {INPUT_NAME: tested}))

    def bind(self, scope: dict[str, Any], name: str, value: Any) -> None:
        scope[name] = value

    def to_data(self, value: Any) -> Any:
        return value

    def allowed(self, cell: Cell) -> list[Any]:
        return [self.environment.evaluate(part, {}) for part in split_top_level(cell.text)]


def split_top_level(text: str) -> list[str]:
    """``"a", "b"`` into its parts (commas outside quotes and brackets)."""
    parts, depth, quote, start = [], 0, "", 0
    for i, ch in enumerate(text):
        if quote:
            quote = "" if ch == quote else quote
        elif ch in "\"'":
            quote = ch
        elif ch in "([{":
            depth += 1
        elif ch in ")]}":
            depth -= 1
        elif ch == "," and depth == 0:
            parts.append(text[start:i])
            start = i + 1
    parts.append(text[start:])
    return [p.strip() for p in parts if p.strip()]


def compile_cells(dmn: DmnFile) -> FeelCells | PythonCells:
    return FeelCells(dmn) if language_of(dmn) == FEEL else PythonCells(dmn)


__all__ = ["FEEL", "PYTHON", "FeelCells", "FeelError", "PythonCells", "compile_cells", "language_of"]
