"""The registry of operations that service tasks may call.

Connectors (pluggy plugins, see ``connectors/``) add operations here; the engine itself only knows
the registry and two built-ins that exercise the job mechanics: ``echo`` and ``fail``.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
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


@dataclass(frozen=True)
class Operation:
    name: str
    call: OperationCall
    params_schema: dict[str, Any] = field(default_factory=lambda: {"type": "object"})
    result_schema: dict[str, Any] = field(default_factory=dict)
    idempotent: bool = False
    description: str = ""

    def validate_params(self, params: dict[str, Any]) -> None:
        validator = jsonschema.Draft202012Validator(self.params_schema)
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
            raise DefinitionError(f"Operation {operation.name} is registered twice.", code="duplicate_operation")
        self._operations[operation.name] = operation

    def get(self, name: str) -> Operation:
        try:
            return self._operations[name]
        except KeyError:
            raise DefinitionError(f"Unknown connector operation '{name}'.", code="unknown_operation") from None

    def __contains__(self, name: object) -> bool:
        return name in self._operations

    def names(self) -> list[str]:
        return sorted(self._operations)

    def all(self) -> list[Operation]:
        return [self._operations[n] for n in self.names()]


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
    return registry
