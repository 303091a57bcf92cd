"""The business rule task: calls a decision by key (``spiffworkflow:calledDecisionId`` or Camunda's
``camunda:decisionRef``), from the process's own bundle or, failing that, from the DMN deployment of that key
that is active when the task runs (a decision service several processes share).

Versioning rule: a decision in the process's own bundle is the one deployed with the process (it never
changes under a running instance); a shared decision is the latest active version *at the moment the task
runs*, and the version used (key, version, deployment id, content hash) is kept with the task
(``internal_data['gmpflow_decision']``, part of the instance's state and of its record). A change to a shared
decision goes live only through its own deployment's change control.

The SpiffWorkflow side of engine.dmn: the task spec, its parser and its converter.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from SpiffWorkflow.spiff.parser.task_spec import SpiffTaskParser
from SpiffWorkflow.spiff.serializer.task_spec import SpiffBpmnTaskConverter
from SpiffWorkflow.spiff.specs.spiff_task import SpiffBpmnTask
from SpiffWorkflow.util.deep_merge import DeepMerge

from engine.dmn.decide import CompiledDmn, DecisionFailed, evaluate, task_data

CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
USED = "gmpflow_decision"  # internal_data key: which decision (and which shared version) a task used

# (decision key) -> (compiled DMN, decision id, what to record) of the active shared version; None: none
SharedResolver = Callable[[str], "tuple[CompiledDmn, str, dict[str, Any]] | None"]


def decision_ref(node: Any) -> str | None:
    return SpiffTaskParser._parse_extensions(node).get("calledDecisionId") or node.get(
        f"{{{CAMUNDA_NS}}}decisionRef"
    )


class BusinessRuleTask(SpiffBpmnTask):  # type: ignore[misc]
    def __init__(
        self,
        wf_spec: Any,
        bpmn_id: str,
        decision_ref: str,
        local: CompiledDmn | None = None,
        result_variable: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(wf_spec, bpmn_id, **kwargs)
        self.decision_ref, self.local, self.result_variable = decision_ref, local, result_variable

    def _run_hook(self, my_task: Any) -> bool:
        compiled, decision_id, used = self._resolve(my_task)
        decision = compiled.dmn.decisions[decision_id]
        value = evaluate(compiled, decision_id, my_task.data)
        if self.result_variable:
            my_task.data[self.result_variable] = compiled.cells.to_data(value)
        else:
            my_task.data = DeepMerge.merge(my_task.data, task_data(compiled, decision, value))
        my_task.internal_data[USED] = used
        return bool(super()._run_hook(my_task))

    def _resolve(self, my_task: Any) -> tuple[CompiledDmn, str, dict[str, Any]]:
        if self.local is not None:
            return self.local, self.decision_ref, {"key": self.decision_ref, "source": "bundle"}
        resolver: SharedResolver | None = getattr(my_task.workflow.script_engine, "shared_decisions", None)
        found = resolver(self.decision_ref) if resolver is not None else None
        if found is None:
            raise DecisionFailed(
                f"The business rule task calls the decision '{self.decision_ref}', which is "
                "neither in the process's bundle nor deployed and active on its own.",
                element_id=self.bpmn_id,
                code="decision_not_found",
            )
        return found


class BusinessRuleTaskParser(SpiffTaskParser):  # type: ignore[misc]
    """Reads the decision key; the decision itself is looked up in the bundle's DMN files (the parser's
    ``gmp_decisions``: decision id -> compiled file), else left to run time (a shared decision)."""

    def create_task(self) -> BusinessRuleTask:
        ref = decision_ref(self.node) or ""
        extensions = self.parse_extensions()
        local = getattr(self.process_parser.parser, "gmp_decisions", {}).get(ref)
        return BusinessRuleTask(
            self.spec,
            self.bpmn_id,
            decision_ref=ref,
            local=local,
            result_variable=self.node.get(f"{{{CAMUNDA_NS}}}resultVariable"),
            prescript=extensions.get("preScript"),
            postscript=extensions.get("postScript"),
            **self.bpmn_attributes,
        )

    @staticmethod
    def get_decision_ref(node: Any) -> str | None:
        return decision_ref(node)


class BusinessRuleTaskConverter(SpiffBpmnTaskConverter):  # type: ignore[misc]
    """For tools that show a spec (``engine.spiff.state.spec_to_dict``): the decision key, not its table."""

    def to_dict(self, spec: BusinessRuleTask) -> dict[str, Any]:
        dct = super().to_dict(spec)
        dct.update(decision_ref=spec.decision_ref, result_variable=spec.result_variable)
        return dct
