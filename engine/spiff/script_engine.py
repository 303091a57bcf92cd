"""SpiffWorkflow's script engine, running every expression and script of a workflow in the sandbox
(``engine.sandbox.SandboxEnvironment``)."""

from __future__ import annotations

from typing import Any, Callable

from SpiffWorkflow.bpmn.script_engine import PythonScriptEngine

from engine.errors import ConnectorError, GmpflowError, ScriptFailed, ScriptRejected
from engine.sandbox.environment import DEFAULT_MAX_SECONDS, SandboxEnvironment


class SandboxScriptEngine(PythonScriptEngine):  # type: ignore[misc]
    """SpiffWorkflow's script engine, running everything in SandboxEnvironment.

    ``service_handler(task, operation_name=..., operation_params=...)`` answers service tasks; without one,
    a service task raises ConnectorError(code="service_handler_missing"). Sandbox errors propagate as
    ScriptRejected/ScriptFailed with ``element_id`` set to the task's BPMN id, never wrapped by SpiffWorkflow.
    """

    def __init__(self, environment: SandboxEnvironment | None = None, *,
                 service_handler: Callable[..., Any] | None = None,
                 max_seconds: float = DEFAULT_MAX_SECONDS) -> None:
        super().__init__(environment or SandboxEnvironment(max_seconds=max_seconds))
        self.service_handler = service_handler

    def evaluate(self, task: Any, expression: str, external_context: dict[str, Any] | None = None) -> Any:
        try:
            return self.environment.evaluate(expression, task.data, external_context)
        except (ScriptRejected, ScriptFailed) as err:
            raise _at_element(err, task) from None

    def execute(self, task: Any, script: str, external_context: dict[str, Any] | None = None) -> bool:
        try:
            return bool(self.environment.execute(script, task.data, external_context or {}))
        except (ScriptRejected, ScriptFailed) as err:
            raise _at_element(err, task) from None

    def call_service(self, task: Any, **kwargs: Any) -> Any:
        if self.service_handler is None:
            raise ConnectorError(
                f"service task '{_element_id(task)}' calls '{kwargs.get('operation_name')}', "
                "but no service handler is configured", code="service_handler_missing", retryable=False)
        return self.service_handler(task, **kwargs)


def _element_id(task: Any) -> str:
    spec = task.task_spec
    return str(getattr(spec, "bpmn_id", None) or spec.name)


def _at_element(err: GmpflowError, task: Any) -> GmpflowError:
    element_id = _element_id(task)
    err.context["element_id"] = element_id
    if isinstance(err, ScriptRejected):
        err.element_id = element_id
    return err
