"""The registry of operations that service tasks may call.

Connectors (pluggy plugins, see ``connectors/``) add operations here; the engine itself only knows
the registry, two built-ins that exercise the job mechanics (``echo`` and ``fail``) and
``notify.downstream``, the change-control process's notification until connectors provide one.
The operations that read or change governed state are bound to an engine by the process packs
(``engine.packs``: ``gmpflow_pack_operations``; e.g. ``gmp.governance``).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from functools import cached_property
from importlib.metadata import entry_points
from typing import Any

import jsonschema

from engine.errors import ConnectorError, DefinitionError, ValidationFailed

# call(params, context) -> JSON-serializable result; context carries the idempotency key.
OperationCall = Callable[[dict[str, Any], "CallContext"], Any]


@dataclass(frozen=True)
class CallContext:
    idempotency_key: str     # the task guid: the counterpart applies a repeated call once
    instance_id: int | None
    attempt: int
    # an entry check (``Operation.at_entry``) runs inside the completion's own transaction: these are its unit
    # of work (``uow.session`` for the ORM), who completes the task, when, and the task's element id
    unit_of_work: Any = None
    actor: Any = None
    at: Any = None
    element_id: str | None = None


@dataclass(frozen=True)
class Operation:
    name: str
    call: OperationCall
    params_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    result_schema: dict[str, Any] = field(default_factory=dict)
    idempotent: bool = False
    description: str = ""
    only_in: str | None = None  # the one process (key) whose service tasks may call it; lint refuses others
    # an entry check: named by a user task's ``entry.check``, run before the signature inside the completion's
    # transaction (``engine.runtime.entry_checks``); never by a service task
    at_entry: bool = False

    @cached_property
    def _params_validator(self) -> jsonschema.Draft202012Validator:
        return jsonschema.Draft202012Validator(self.params_schema)  # building one costs more than validating

    def validate_params(self, params: dict[str, Any]) -> None:
        validator = self._params_validator
        errors = {"/".join(map(str, e.absolute_path)) or "(parameters)": e.message
                  for e in validator.iter_errors(params)}
        if errors:
            raise ValidationFailed(f"The parameters of {self.name} are invalid.", errors=errors,
                                   code="operation_params_invalid")


class OperationRegistry:
    def __init__(self) -> None:
        self._operations: dict[str, Operation] = {}

    def register(self, operation: Operation) -> None:
        if operation.name in self._operations:
            raise DefinitionError(f"Operation {operation.name} is registered twice.",
                                  code="duplicate_operation")
        self._operations[operation.name] = operation

    def get(self, name: str) -> Operation:
        try:
            return self._operations[name]
        except KeyError:
            raise DefinitionError(f"Unknown connector operation '{name}'.",
                                  code="unknown_operation") from None

    def __contains__(self, name: object) -> bool:
        return name in self._operations

    def names(self) -> list[str]:
        return sorted(self._operations)

    def all(self) -> list[Operation]:
        return [self._operations[n] for n in self.names()]

    def extended(self, operations: list[Operation]) -> OperationRegistry:
        """A new registry with this one's operations and ``operations`` (this one is left as it is).

        Raises DefinitionError ``duplicate_operation`` when a name is taken.
        """
        registry = OperationRegistry()
        for operation in [*self.all(), *operations]:
            registry.register(operation)
        return registry

    def element_templates(self) -> list[dict[str, Any]]:
        """One element template per operation, in the shape of Camunda/bpmn-js element templates.

        Bindings name SpiffWorkflow's extension elements: ``spiffworkflow:serviceTaskOperator`` (its
        ``id``) and one ``spiffworkflow:parameter`` per parameter (its ``value`` is an expression, so a
        literal string is offered quoted). The browser modeler maps these to the XML it writes.
        """
        return [_element_template(op) for op in self.all()]


def _element_template(op: Operation) -> dict[str, Any]:
    schema_props: dict[str, Any] = op.params_schema.get("properties", {})
    required = set(op.params_schema.get("required", []))
    properties: list[dict[str, Any]] = [{
        "type": "Hidden", "value": op.name,
        "binding": {"type": "spiffworkflow:serviceTaskOperator", "name": "id"},
    }]
    for name, prop in schema_props.items():
        kind = prop.get("type", "string")
        entry: dict[str, Any] = {
            "label": prop.get("title", name), "type": "String",
            "binding": {"type": "spiffworkflow:parameter", "name": name,
                        "parameterType": kind if isinstance(kind, str) else "any"},
        }
        if prop.get("description"):
            entry["description"] = prop["description"]
        if "enum" in prop:
            entry["type"] = "Dropdown"
            entry["choices"] = [{"name": str(v), "value": repr(v)} for v in prop["enum"]]
        if name in required:
            entry["constraints"] = {"notEmpty": True}
        properties.append(entry)
    return {
        "name": op.name, "id": f"gmpflow.{op.name}", "version": 1,
        "description": op.description, "appliesTo": ["bpmn:ServiceTask"],
        "properties": properties,
        "gmpflow": {"idempotent": op.idempotent, "paramsSchema": op.params_schema,
                    "resultSchema": op.result_schema},
    }


def _echo(params: dict[str, Any], context: CallContext) -> Any:
    return params


def _fail(params: dict[str, Any], context: CallContext) -> Any:
    """Fails ``times`` times per idempotency key (all attempts when absent), then echoes."""
    times = params.get("times")
    if times is None or context.attempt <= int(times):
        raise ConnectorError(str(params.get("message", "the operation failed on purpose")),
                             retryable=bool(params.get("retryable", True)),
                             bpmn_error_code=params.get("bpmn_error_code"))
    return params


def _notify_downstream(params: dict[str, Any], context: CallContext) -> Any:
    """Calls nobody yet; the job's audit event records the call and this result."""
    return {"notified": [], "subject": params.get("subject"), "event": params.get("event"),
            "instance_id": context.instance_id, "note": "no downstream system is connected"}


def builtin_registry() -> OperationRegistry:
    registry = OperationRegistry()
    registry.register(Operation("echo", _echo, idempotent=True, description="Returns its parameters."))
    registry.register(Operation(
        "fail", _fail, idempotent=True,
        params_schema={"type": "object", "properties": {"times": {"type": "integer", "minimum": 0},
                                                        "message": {"type": "string"},
                                                        "retryable": {"type": "boolean"},
                                                        "bpmn_error_code": {"type": "string"}}},
        description="Fails (the first `times` attempts, or always); for testing retries and incidents."))
    registry.register(Operation(
        "notify.downstream", _notify_downstream, idempotent=True,
        params_schema={"type": "object", "required": ["subject"], "additionalProperties": False,
                       "properties": {"subject": {"type": "string"}, "event": {"type": "string"},
                                      "details": {"type": ["object", "null"]}}},
        description="Tells downstream systems (ERP, MES) that a governed change is in force. A no-op until "
                    "connectors provide it: the call and its result are recorded in the audit trail."))
    return registry


REGISTRY_ENTRY_POINT_GROUP = "gmpflow.registry"


def configured_registry() -> OperationRegistry:
    """The registry of the installed distribution, for composition roots (the CLI, the web app).

    The engine never imports connectors: a distribution that ships them names its registry factory in
    the entry point group ``gmpflow.registry`` (gmpflow's own: ``connectors.plugins:build_registry``,
    which reads the environment). Without one, only the built-ins ``echo`` and ``fail`` exist.
    Raises DefinitionError when more than one factory is installed.
    """
    found = list(entry_points(group=REGISTRY_ENTRY_POINT_GROUP))
    if not found:
        return builtin_registry()
    if len(found) > 1:
        raise DefinitionError("More than one registry factory is installed in the entry point group "
                              f"{REGISTRY_ENTRY_POINT_GROUP}: {', '.join(ep.value for ep in found)}.",
                              code="ambiguous_registry")
    registry = found[0].load()()
    if not isinstance(registry, OperationRegistry):
        raise DefinitionError(f"{found[0].value} did not return an OperationRegistry.", code="bad_registry")
    return registry
