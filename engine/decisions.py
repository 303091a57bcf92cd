"""Evaluating a deployed DMN decision outside a running instance, with the rules that fired.

A business-rule task runs its decision inside an instance and keeps only the outputs. A record that shows
*why* something was decided (which rule fired, its description) evaluates the same parsed decision of the
same deployment here, in the same sandbox, on the data it is given.
"""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace
from typing import Any

from engine.errors import NotFound
from engine.spiff.parsing import ParsedDefinition


@dataclass(frozen=True)
class Hit:
    rule_id: str
    description: str
    outputs: dict[str, Any]


def _decision_engine(parsed: ParsedDefinition, element_id: str) -> Any:
    for spec in (parsed.spec, *parsed.subprocess_specs.values()):
        task_spec = spec.task_specs.get(element_id)
        if task_spec is not None and getattr(task_spec, "dmnEngine", None) is not None:
            return task_spec.dmnEngine
    raise NotFound(f"The process {parsed.key} has no business-rule task '{element_id}'.",
                   code="decision_not_found")


def evaluate(parsed: ParsedDefinition, element_id: str, data: dict[str, Any],
             script_engine: Any) -> list[Hit]:
    """The rules of the decision called by business-rule task ``element_id`` that match ``data``, in table
    order (one at most for UNIQUE, every match for COLLECT), each with its outputs."""
    decider = _decision_engine(parsed, element_id)
    task = SimpleNamespace(data=data, workflow=SimpleNamespace(script_engine=script_engine),
                           task_spec=SimpleNamespace(name=element_id, bpmn_id=element_id,
                                                     bpmn_name=element_id))
    return [Hit(rule.id, rule.description or "", dict(rule.output_as_dict(task)))
            for rule in decider.decide(task)]
