"""Evaluating a deployed DMN decision outside a running instance, with the rules that fired.

A business-rule task runs its decision inside an instance and keeps only the outputs. A record that shows
*why* something was decided (which rule fired, its description) evaluates the same parsed decision of the
same deployment here, in the same sandbox, on the data it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from engine.dmn.decide import matching_rules
from engine.errors import NotFound
from engine.spiff.parsing import ParsedDefinition


@dataclass(frozen=True)
class Hit:
    rule_id: str
    description: str
    outputs: dict[str, Any]


def _decision_of(parsed: ParsedDefinition, element_id: str, script_engine: Any) -> tuple[Any, str]:
    """The compiled DMN and decision id that business-rule task ``element_id`` calls: its bundle's, else the
    decision deployed alone and active now (``engine.dmn``)."""
    for spec in (parsed.spec, *parsed.subprocess_specs.values()):
        task_spec = spec.task_specs.get(element_id)
        if task_spec is None or not hasattr(task_spec, "decision_ref"):
            continue
        if task_spec.local is not None:
            return task_spec.local, task_spec.decision_ref
        resolver = getattr(script_engine, "shared_decisions", None)
        found = resolver(task_spec.decision_ref) if resolver is not None else None
        if found is not None:
            return found[0], found[1]
    raise NotFound(f"The process {parsed.key} has no business-rule task '{element_id}'.",
                   code="decision_not_found")


def evaluate(parsed: ParsedDefinition, element_id: str, data: dict[str, Any],
             script_engine: Any) -> list[Hit]:
    """The rules of the decision called by business-rule task ``element_id`` that match ``data``, in table
    order (every match for COLLECT, the first for FIRST), each with its outputs."""
    compiled, decision_id = _decision_of(parsed, element_id, script_engine)
    return [Hit(rule.id, rule.description, dict(outputs) if isinstance(outputs, dict) else {"value": outputs})
            for rule, outputs in matching_rules(compiled, decision_id, data)]
