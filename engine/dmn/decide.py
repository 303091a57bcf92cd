"""Evaluate a decision over the task data, with every DMN 1.3 hit policy.

The result of a decision (its DMN value): a table with one output gives that output's value, with several a
dict by output name; COLLECT, RULE ORDER and OUTPUT ORDER give lists of those, COLLECT with an aggregation
(SUM, MIN, MAX, COUNT) a number; no matching rule gives None (COUNT: 0). ``task_data`` turns it into the
variables a business rule task writes, named as SpiffWorkflow names them (the output names; a list per output
for the list-valued policies).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from engine.dmn.cells import FeelCells, PythonCells, compile_cells
from engine.dmn.model import Column, Decision, DmnFile, Rule, Table
from engine.errors import GmpflowError, ScriptFailed
from engine.feel import FeelError, from_data
from engine.feel.durations import YearsMonths, parse_duration

LIST_POLICIES = {"COLLECT", "RULE ORDER", "OUTPUT ORDER"}


class DecisionFailed(ScriptFailed):
    """The decision could not give a result (UNIQUE with several matches, ANY with differing outputs...)."""

    code = "decision_failed"


@dataclass
class CompiledDmn:
    """One DMN file, parsed and with its cells compiled: what a deployment keeps in its spec cache."""

    dmn: DmnFile
    cells: FeelCells | PythonCells

    @property
    def language(self) -> str:
        return self.cells.language


def compile_dmn(dmn: DmnFile) -> CompiledDmn:
    return CompiledDmn(dmn, compile_cells(dmn))


def _fail(
    decision: Decision, message: str, element_id: str | None = None, code: str | None = None
) -> DecisionFailed:
    """``code``: a sandbox's own (``script_limit_exceeded``...) kept as it is; else ``decision_failed``."""
    return DecisionFailed(
        f"Decision '{decision.name}' ({decision.id}): {message}",
        element_id=element_id or decision.id,
        code=code,
    )


def evaluate(compiled: CompiledDmn, decision_id: str, data: dict[str, Any]) -> Any:
    """The decision's value (a FEEL value for FEEL files) over ``data``; required decisions first.
    Raises DecisionFailed."""
    cells = compiled.cells
    scope = cells.scope(data)
    _type_input_data(compiled, scope, compiled.dmn.decisions[decision_id])
    return _evaluate(compiled, compiled.dmn.decisions[decision_id], scope, set())


def matching_rules(compiled: CompiledDmn, decision_id: str, data: dict[str, Any]) -> list[tuple[Rule, Any]]:
    """The rules of a decision table that match ``data`` in table order, each with its outputs as task data
    (FIRST: the first only): what a record shows to say *why* a decision came out as it did."""
    cells, decision = compiled.cells, compiled.dmn.decisions[decision_id]
    if decision.table is None:
        raise _fail(decision, "it is not a decision table")
    table = decision.table
    scope: Any = cells.scope(data)
    _type_input_data(compiled, scope, decision)
    try:
        values = [cells.value(scope, c.expression) if c.expression is not None else None
                  for c in table.inputs]
        if isinstance(cells, FeelCells):
            values = [_typed(v, c.type_ref, _label(c)) for v, c in zip(values, table.inputs, strict=True)]
        matched = [rule for rule in table.rules
                   if all(cells.test(scope, e, v) for e, v in zip(rule.inputs, values, strict=True))]
        matched = matched[:1] if table.hit_policy == "FIRST" else matched
        return [(rule, cells.to_data(_outputs(cells, table, rule, scope))) for rule in matched]
    except FeelError as exc:
        raise _fail(decision, str(exc)) from None


def _evaluate(compiled: CompiledDmn, decision: Decision, scope: Any, busy: set[str]) -> Any:
    if decision.id in busy:
        raise _fail(decision, "it requires itself (a cycle of required decisions)")
    busy.add(decision.id)
    for required in decision.requires:
        other = compiled.dmn.decisions.get(required)
        if other is None:
            raise _fail(decision, f"it requires the decision '{required}', which the file does not hold")
        compiled.cells.bind(scope, other.variable, _evaluate(compiled, other, scope, busy))
    busy.discard(decision.id)
    try:
        if decision.literal is not None:
            return compiled.cells.value(scope, decision.literal)
        if decision.table is None:
            raise _fail(decision, f"{decision.unsupported} is not supported")
        return _table(compiled.cells, decision, decision.table, scope)
    except FeelError as exc:
        raise _fail(decision, str(exc)) from None
    except GmpflowError as exc:
        if isinstance(exc, DecisionFailed):
            raise
        failed = _fail(decision, exc.message, exc.context.get("element_id"), exc.code)
        if getattr(exc, "retryable", None) is False:  # refused again on retry: the sandbox said so
            failed.retryable = False  # type: ignore[attr-defined]
        raise failed from None


def _table(cells: FeelCells | PythonCells, decision: Decision, table: Table, scope: Any) -> Any:
    values = [
        cells.value(scope, column.expression) if column.expression is not None else None
        for column in table.inputs
    ]
    if isinstance(cells, FeelCells):
        values = [_typed(v, c.type_ref, _label(c)) for v, c in zip(values, table.inputs, strict=True)]
    matched = [
        rule
        for rule in table.rules
        if all(cells.test(scope, entry, value) for entry, value in zip(rule.inputs, values, strict=True))
    ]
    policy = table.hit_policy
    if policy == "FIRST":
        matched = matched[:1]
    if not matched and any(column.default is not None for column in table.outputs):
        return _defaults(cells, table, scope)
    if not matched:
        return (
            Decimal(0)
            if (policy, table.aggregation) == ("COLLECT", "COUNT") and isinstance(cells, FeelCells)
            else (
                0
                if (policy, table.aggregation) == ("COLLECT", "COUNT")
                else []
                if policy in LIST_POLICIES and not table.aggregation
                else None
            )
        )
    results = [_outputs(cells, table, rule, scope) for rule in matched]
    if policy == "UNIQUE" and len(matched) > 1:
        rows = ", ".join(str(r.row) for r in matched)
        raise _fail(decision, f"the hit policy UNIQUE allows one matching rule, but rules {rows} match")
    if policy == "ANY" and any(r != results[0] for r in results[1:]):
        rows = ", ".join(str(r.row) for r in matched)
        raise _fail(
            decision,
            f"the hit policy ANY needs matching rules to agree, but rules {rows} give different outputs",
        )
    if policy in ("PRIORITY", "OUTPUT ORDER"):
        order = _priorities(cells, table)
        ranked = sorted(range(len(results)), key=lambda i: _rank(results[i], table, order))
        results = [results[i] for i in ranked]
        if policy == "PRIORITY":
            return results[0]
        return results
    if policy in ("RULE ORDER", "COLLECT"):
        return _aggregate(decision, table.aggregation, results) if table.aggregation else results
    return results[0]


def _label(column: Column) -> str:
    return column.name or (column.expression.text.strip() if column.expression is not None else column.id)


DATE_TYPES = {"date": "date", "dateTime": "date and time", "date and time": "date and time",
              "dayTimeDuration": "days and time duration", "days and time duration": "days and time duration",
              "yearMonthDuration": "years and months duration",
              "years and months duration": "years and months duration"}
EXAMPLES = {"date": "2026-01-31", "date and time": "2026-01-31T14:30:00Z",
            "days and time duration": "P1DT12H", "years and months duration": "P1Y6M"}


def _typed(value: Any, type_ref: str | None, name: str) -> Any:
    """An input typed ``date``, ``date and time`` (``dateTime``), ``days and time duration``
    (``dayTimeDuration``) or ``years and months duration`` (``yearMonthDuration``) that the data carries as
    ISO text (a form, a JSON client) becomes that value before the unary tests compare it; text that is not
    ISO is refused (FeelError: ``decision_failed`` naming the input), never compared as text."""
    kind = DATE_TYPES.get((type_ref or "").removeprefix("feel:"))
    if kind is None or not isinstance(value, str):
        return value
    try:
        if kind == "date":
            return date.fromisoformat(value)
        if kind == "date and time":
            return datetime.fromisoformat(value.removesuffix("Z") + ("+00:00" if value.endswith("Z") else ""))
        duration = parse_duration(value)
        if duration is not None and isinstance(duration, YearsMonths) == kind.startswith("years"):
            return duration
        raise ValueError(value)
    except ValueError:
        shown = value if len(value) <= 40 else value[:40] + "..."
        raise FeelError(f"the input '{name}' is typed {kind}, but its value {shown!r} is not an ISO "
                        f"{kind} (e.g. {EXAMPLES[kind]})") from None


def _type_input_data(compiled: CompiledDmn, scope: Any, decision: Decision) -> None:
    """Input data declared ``date``/``date and time`` (``inputData/variable/@typeRef``, or a component of
    its itemDefinition) given as ISO text: as dates in the scope, so that a rule's ``> dateE`` compares
    dates (FEEL files only)."""
    if not isinstance(compiled.cells, FeelCells):
        return
    variables = scope.variables
    try:
        for name, type_ref in compiled.dmn.input_types.items():
            if name in variables:
                variables[name] = _typed(variables[name], type_ref, name)
        for name, components in compiled.dmn.component_types.items():
            if isinstance(variables.get(name), dict):
                variables[name] = {key: _typed(value, components.get(key), f"{name}.{key}")
                                   for key, value in variables[name].items()}
    except FeelError as exc:
        raise _fail(decision, str(exc)) from None


def _outputs(cells: FeelCells | PythonCells, table: Table, rule: Rule, scope: Any) -> Any:
    values = [cells.value(scope, cell) for cell in rule.outputs]
    if len(table.outputs) == 1:
        return values[0]
    return {column.name: value for column, value in zip(table.outputs, values, strict=True)}


def _defaults(cells: FeelCells | PythonCells, table: Table, scope: Any) -> Any:
    """No rule matches and outputs have default output entries: the table's result is those defaults (an
    output without one is null), whatever the hit policy (COLLECT MAX with no match gives its default, not
    null); a list-valued policy without aggregation gives them as its one row."""
    values = [cells.value(scope, c.default) if c.default is not None else None for c in table.outputs]
    result = values[0] if len(table.outputs) == 1 else {
        column.name: value for column, value in zip(table.outputs, values, strict=True)}
    return [result] if table.hit_policy in LIST_POLICIES and not table.aggregation else result


def _priorities(cells: FeelCells | PythonCells, table: Table) -> list[list[Any]]:
    return [cells.allowed(column.values) if column.values is not None else [] for column in table.outputs]


def _rank(result: Any, table: Table, order: list[list[Any]]) -> tuple[int, ...]:
    outputs = [result] if len(table.outputs) == 1 else [result.get(c.name) for c in table.outputs]
    ranks = []
    for value, allowed in zip(outputs, order, strict=True):
        ranks.append(allowed.index(value) if value in allowed else len(allowed))
    return tuple(ranks)


def _aggregate(decision: Decision, aggregation: str, results: list[Any]) -> Any:
    if aggregation == "COUNT":
        return (
            Decimal(len({repr(r) for r in results}))
            if isinstance(results[0], (Decimal, str, bool)) or results[0] is None
            else len({repr(r) for r in results})
        )
    numbers = [from_data(r) for r in results]
    if not all(isinstance(n, Decimal) for n in numbers):
        raise _fail(
            decision,
            f"the aggregation {aggregation} needs numbers; the matching rules give "
            f"{', '.join(repr(r) for r in results[:5])}",
        )
    if aggregation == "SUM":
        return sum(numbers, Decimal(0))
    return min(numbers) if aggregation == "MIN" else max(numbers)


def task_data(compiled: CompiledDmn, decision: Decision, value: Any) -> dict[str, Any]:
    """The variables a business rule task writes for the decision's value (as SpiffWorkflow names them)."""
    value = compiled.cells.to_data(value)
    table = decision.table
    if table is None or table.aggregation:
        return {decision.variable: value}
    names = [column.name or decision.variable for column in table.outputs]
    if value is None:
        return {}
    if table.hit_policy in LIST_POLICIES:
        if len(names) == 1:
            return {names[0]: value}
        return {name: [row.get(name) for row in value] for name in names}
    if len(names) == 1:
        return {names[0]: value}
    return dict(value)
