"""Lint of DMN files and of the decisions business rule tasks call: what gmpflow cannot evaluate right is
refused here, naming the element and the construct, never evaluated wrongly later."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from lxml import etree

from engine.dmn.cells import (
    FEEL,
    MAX_INPUT_MARKS,
    calls_in,
    cells_of,
    known_names,
    language_of,
    parse_feel,
    python_problem,
)
from engine.dmn.model import AGGREGATIONS, HIT_POLICIES, Cell, Decision, DmnFile, read_dmn
from engine.errors import DefinitionError
from engine.feel import FUNCTION_NAMES, FeelSyntaxError
from engine.sandbox.policy import FORBIDDEN_ATTRIBUTES
from engine.spiff.dmn import decision_ref

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
UNSUPPORTED_DRG = {
    "businessKnowledgeModel": "business knowledge models",
    "decisionService": "decision services declared in DMN (deploy the DMN file alone instead)",
    "knowledgeSource": None,
}  # a knowledge source is documentation: allowed


def _problem(message: str, file: str, element_id: str | None, line: int | None, code: str) -> DefinitionError:
    return DefinitionError(message, file=file, element_id=element_id, line=line, code=code)


MAX_POWER = 1_000  # largest constant exponent a FEEL cell may write (a larger one can only overflow)


def _limit_problems(dmn: DmnFile, role: str, cell: Cell, tree: Any) -> list[DefinitionError]:
    """What the sandbox refuses in Python cells is refused in FEEL cells too, before it runs: a constant
    exponent past MAX_POWER; more than MAX_INPUT_MARKS uses of '?' in one entry."""
    problems = []
    if role == "entry" and cell.text.count("?") > MAX_INPUT_MARKS:
        problems.append(
            _problem(
                f"An input entry may name the input value ('?') at most {MAX_INPUT_MARKS} times.",
                dmn.name,
                cell.element_id,
                cell.line,
                "script_rejected",
            )
        )
    for node in _nodes(tree):
        name = node[1] if node[0] in ("name", "call") else node[2] if node[0] == "path" else None
        if isinstance(name, str) and (name.startswith("_") or name in FORBIDDEN_ATTRIBUTES):
            problems.append(
                _problem(
                    f"'{cell.text.strip()[:80]}': the name '{name}' is not allowed (names starting "
                    "with '_' and Python's introspection attributes are refused in every cell).",
                    dmn.name,
                    cell.element_id,
                    cell.line,
                    "script_rejected",
                )
            )
            break
        if (
            node[:2] == ("arith", "**")
            and _constant(node[3]) is not None
            and abs(_constant(node[3])) > MAX_POWER
        ):
            problems.append(
                _problem(
                    f"'{cell.text.strip()[:80]}': an exponent above {MAX_POWER} is refused "
                    "before it runs (it could only overflow).",
                    dmn.name,
                    cell.element_id,
                    cell.line,
                    "script_rejected",
                )
            )
            break
    return problems


def _nodes(node: Any) -> Iterable[tuple[Any, ...]]:
    if isinstance(node, tuple):
        if node and isinstance(node[0], str):
            yield node
        for part in node:
            yield from _nodes(part)
    elif isinstance(node, list):
        for part in node:
            yield from _nodes(part)


def _constant(node: Any) -> Any:
    """The value of a constant number tree (numbers, minus, + - * and small powers), else None."""
    from decimal import Decimal, InvalidOperation

    if node[0] == "num":
        return node[1]
    if node[0] == "neg":
        inner = _constant(node[1])
        return None if inner is None else -inner
    if node[0] == "arith":
        a, b = _constant(node[2]), _constant(node[3])
        if a is None or b is None:
            return None
        try:
            if node[1] == "**":
                return Decimal("Infinity") if abs(b) > MAX_POWER else a**b
            return {"+": a + b, "-": a - b, "*": a * b}.get(node[1])
        except (InvalidOperation, ArithmeticError):
            return Decimal("Infinity")
    return None


def _cell_problems(dmn: DmnFile, language: str) -> list[DefinitionError]:
    problems = []
    names = known_names(dmn)
    for role, cell in cells_of(dmn):
        if language == FEEL:
            try:
                tree = parse_feel(role, cell.text, names)
            except FeelSyntaxError as exc:
                what = (
                    f"the FEEL construct '{exc.unsupported}' is not supported by gmpflow"
                    if exc.unsupported
                    else f"it is not FEEL that gmpflow understands: {exc}"
                )
                problems.append(
                    _problem(
                        f"'{cell.text.strip()[:80]}': {what}.",
                        dmn.name,
                        cell.element_id,
                        cell.line,
                        "feel_unsupported",
                    )
                )
                continue
            problems += [
                _problem(
                    f"'{cell.text.strip()[:80]}': the FEEL function '{name}' is not supported by "
                    f"gmpflow; supported: {', '.join(sorted(FUNCTION_NAMES))}.",
                    dmn.name,
                    cell.element_id,
                    cell.line,
                    "feel_unsupported",
                )
                for name in calls_in(tree)
                if name not in FUNCTION_NAMES and not name.startswith("_")
            ]
            problems += _limit_problems(dmn, role, cell, tree)
        else:
            refused = python_problem(role, cell.text)
            if refused is not None:
                problems.append(
                    _problem(
                        f"{refused.message} (a Python cell, as SpiffWorkflow reads this file)",
                        dmn.name,
                        cell.element_id,
                        cell.line,
                        refused.code,
                    )
                )
    return problems


def _table_problems(dmn: DmnFile, decision: Decision) -> list[DefinitionError]:
    table = decision.table
    if table is None:
        return []
    where = (dmn.name, table.id or decision.id, decision.line)
    problems = []
    if table.hit_policy not in HIT_POLICIES:
        problems.append(
            _problem(
                f"The hit policy '{table.hit_policy}' is not a DMN 1.3 hit policy.", *where, "dmn_unsupported"
            )
        )
    if table.aggregation and (table.hit_policy != "COLLECT" or table.aggregation not in AGGREGATIONS):
        problems.append(
            _problem(
                f"The aggregation '{table.aggregation}' is allowed only with COLLECT and is one "
                "of SUM, MIN, MAX, COUNT.",
                *where,
                "dmn_unsupported",
            )
        )
    if table.aggregation and len(table.outputs) != 1:
        problems.append(
            _problem(
                f"COLLECT {table.aggregation} aggregates one output; the table has {len(table.outputs)}.",
                *where,
                "dmn_unsupported",
            )
        )
    if table.hit_policy in ("PRIORITY", "OUTPUT ORDER") and all(o.values is None for o in table.outputs):
        problems.append(
            _problem(
                f"The hit policy {table.hit_policy} ranks rules by the outputs' output values; "
                "give the outputs their lists of values in priority order.",
                *where,
                "dmn_unsupported",
            )
        )
    if len(table.outputs) > 1 and any(not o.name for o in table.outputs):
        problems.append(
            _problem(
                "A table with several outputs names each output (the variable it writes).",
                *where,
                "dmn_unsupported",
            )
        )
    if not table.outputs:
        problems.append(_problem("The decision table has no output.", *where, "dmn_unsupported"))
    for rule in table.rules:
        if len(rule.inputs) != len(table.inputs) or len(rule.outputs) != len(table.outputs):
            problems.append(
                _problem(
                    f"Rule {rule.row} has {len(rule.inputs)} input and {len(rule.outputs)} "
                    f"output entries; the table has {len(table.inputs)} inputs and "
                    f"{len(table.outputs)} outputs.",
                    dmn.name,
                    rule.id,
                    decision.line,
                    "dmn_invalid",
                )
            )
    return problems


def _requirement_problems(dmn: DmnFile, decision: Decision) -> list[DefinitionError]:
    problems = [
        _problem(
            f"The decision requires '{r}', which is not a decision of this file.",
            dmn.name,
            decision.id,
            decision.line,
            "dmn_invalid",
        )
        for r in decision.requires
        if r not in dmn.decisions
    ]
    if decision.unsupported:
        problems.append(
            _problem(
                f"The decision '{decision.name}' uses {decision.unsupported}, which gmpflow "
                "does not evaluate (decision tables and literal expressions only).",
                dmn.name,
                decision.id,
                decision.line,
                "dmn_unsupported",
            )
        )
    seen, stack = set(), [decision.id]
    while stack:
        current = dmn.decisions.get(stack.pop())
        for r in current.requires if current else []:
            if r == decision.id:
                return [
                    *problems,
                    _problem(
                        "The decision requires itself through other decisions.",
                        dmn.name,
                        decision.id,
                        decision.line,
                        "dmn_invalid",
                    ),
                ]
            if r not in seen:
                seen.add(r)
                stack.append(r)
    return problems


def lint_dmn(name: str, root: etree._Element) -> list[DefinitionError]:
    """Every problem of one DMN file."""
    try:
        dmn = read_dmn(name, root)
    except DefinitionError as exc:
        return [exc]
    problems = []
    for node in root.iter():
        local = etree.QName(node.tag).localname if isinstance(node.tag, str) else ""
        if UNSUPPORTED_DRG.get(local) or local == "knowledgeRequirement":
            what = UNSUPPORTED_DRG.get(local) or "business knowledge models (knowledgeRequirement)"
            problems.append(
                _problem(
                    f"The DMN element '{local}' is not supported by gmpflow: {what}.",
                    name,
                    node.get("id") or (node.getparent().get("id") if node.getparent() is not None else None),
                    node.sourceline,
                    "dmn_unsupported",
                )
            )
    for decision in dmn.decisions.values():
        problems += _requirement_problems(dmn, decision)
        problems += _table_problems(dmn, decision)
    problems += _cell_problems(dmn, language_of(dmn))
    return problems


def lint_decision_refs(
    file: str, root: etree._Element, bundle_decisions: set[str], shared_keys: set[str] | None
) -> list[DefinitionError]:
    """Each business rule task calls a decision of the bundle, or (``shared_keys`` known) one deployed
    alone."""
    problems = []
    for task in root.iter(f"{{{BPMN_NS}}}businessRuleTask"):
        ref = decision_ref(task)
        if not ref:
            problems.append(
                _problem(
                    "The business rule task names no decision (spiffworkflow:calledDecisionId "
                    "or camunda:decisionRef).",
                    file,
                    task.get("id"),
                    task.sourceline,
                    "missing_decision",
                )
            )
        elif ref not in bundle_decisions and shared_keys is not None and ref not in shared_keys:
            problems.append(
                _problem(
                    f"The business rule task calls the decision '{ref}', which is neither in "
                    "the bundle nor deployed alone (deploy its .dmn file first).",
                    file,
                    task.get("id"),
                    task.sourceline,
                    "decision_not_found",
                )
            )
    return problems


def called_decisions(trees: dict[str, etree._Element]) -> set[str]:
    return {
        ref
        for root in trees.values()
        for task in root.iter(f"{{{BPMN_NS}}}businessRuleTask")
        if (ref := decision_ref(task))
    }


__all__ = ["Cell", "called_decisions", "lint_decision_refs", "lint_dmn"]
