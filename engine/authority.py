"""Who may do what, read from the model: the one place the services ask (CONVENTIONS §18).

- work on a task (claim, complete, see it): holders of the task's lane role;
- start a process: the start event's ``start.roles``, else the process's Camunda
  ``candidateStarterGroups``, else the start event's lane, else ``admin`` only;
- send a message: the catching (or message start) event's ``message.senders``, else its lane, else
  ``integration`` and ``admin``.

And which data a client may bring (CONVENTIONS §19): start variables are the writable fields of the start
event's form (``formId``), a message payload those of the catching event's form or its ``message.fields``,
task data those of the task's form. A field that is read-only, disabled or computed in its form, or a
variable the engine or a connector writes, is never the client's to set.

What is derived from a deployment is derived once and kept with its cached parse (deployments are
immutable). Callers that are the engine itself (an ``Actor``, not a signed-in ``Principal``: order release
starting a batch, a step starting the next, timer starts) are not checked here; they are recorded under
their own identity.
"""

from __future__ import annotations

import ast
from collections.abc import Iterable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from engine import audit, forms
from engine.definitions.lint import CAMUNDA_NS, ENGINE_ONLY
from engine.definitions.properties import properties_of, split_list
from engine.errors import PermissionDenied, UndeclaredField
from engine.identity import Principal
from engine.spiff.events import is_none_start_event, is_start_event
from engine.spiff.parsing import BPMN_NS, NS, ParsedDefinition

if TYPE_CHECKING:
    from engine.request_context import RequestContext
    from engine.runtime.rows import TaskRow
    from engine.store import Database
    from engine.store.models import HumanTask

ADMIN_ROLE = "admin"
START_DEFAULT = (ADMIN_ROLE,)
SEND_DEFAULT = ("integration", ADMIN_ROLE)
CATCHING = ("startEvent", "intermediateCatchEvent", "boundaryEvent", "receiveTask")


class NotPermitted(PermissionDenied):
    """The model does not allow this user; the refusal itself goes to the audit trail (see ``refusals``)."""

    code = "not_permitted"

    def __init__(self, message: str, *, action: str, object_type: str, object_id: str,
                 after: dict[str, Any]) -> None:
        super().__init__(message)
        self.action, self.object_type, self.object_id, self.after = action, object_type, object_id, after


@dataclass(frozen=True)
class Gate:
    """One way into a process: a start event or a message catching event, with who may pass and what data."""

    element_id: str
    roles: tuple[str, ...]        # empty: nobody (but the engine)
    roles_from: str               # the property, "candidateStarterGroups", "lane" or "default"
    writable: frozenset[str]      # the keys a client may bring
    protected: frozenset[str]     # declared but read-only, computed or written by the engine
    starts: bool = False          # a (message) start event
    form_id: str | None = None    # its form, whose rules (types, limits, required) the values must meet

    def allows(self, principal: Principal) -> bool:
        return bool(principal.roles & set(self.roles))


# -- tasks ---------------------------------------------------------------------------------------------------
def may_work_on(principal: Principal, task: TaskRow | HumanTask) -> bool:
    return not task.candidate_roles or bool(principal.roles & set(task.candidate_roles))


def check_task(principal: Principal, task: TaskRow | HumanTask, action: str) -> None:
    if not may_work_on(principal, task):
        raise PermissionDenied(f"Only holders of the role {', '.join(task.candidate_roles)} may {action} the "
                               f"task '{task.name}'.", code="role_required")


def check_task_data(parsed: ParsedDefinition, form_id: str | None, data: dict[str, Any]) -> None:
    """Raises UndeclaredField for a key the task's form does not let a client set (every key without a
    form)."""
    def make() -> tuple[frozenset[str], frozenset[str]]:
        writable, protected = _form_fields(parsed.forms.get(form_id or ""))
        written = engine_written(parsed)
        return writable - written, protected | (writable & written)
    writable, protected = _derived(parsed, f"task_form:{form_id}", make)
    _check_keys(data, writable, protected, "the task's form")


# -- deriving the gates once per deployment ---------------------------------------------------------------
def _derived(parsed: ParsedDefinition, name: str, make: Any) -> Any:
    if name not in parsed.derived:
        parsed.derived[name] = make()
    return parsed.derived[name]


def _specs(parsed: ParsedDefinition) -> Iterator[Any]:
    for spec in (parsed.spec, *parsed.subprocess_specs.values()):
        yield from spec.task_specs.values()


def _form_fields(form: dict[str, Any] | None) -> tuple[frozenset[str], frozenset[str]]:
    """(writable keys, read-only/disabled/computed keys) of a form-js form."""
    if form is None:
        return frozenset(), frozenset()
    writable, protected = set(), set()
    for component in forms.fields(form):
        if component.get("type") == "expression" or component.get("readonly") or component.get("disabled"):
            protected.add(component["key"])
        else:
            writable.add(component["key"])
    return frozenset(writable), frozenset(protected)


def engine_written(parsed: ParsedDefinition) -> frozenset[str]:
    """Variables the engine or a connector writes: service-task results and message variables."""
    def make() -> frozenset[str]:
        names = set()
        for ts in _specs(parsed):
            result = getattr(ts, "result_variable", None)
            variable = getattr(getattr(ts, "event_definition", None), "result_var", None)
            names |= {n for n in (result, variable) if isinstance(n, str) and n}
        # message variables from the XML too (after an event-based gateway the specs no longer carry them)
        names |= {(v.text or "").strip() for root in parsed.trees.values()
                  for v in root.iterfind(".//spiffworkflow:messageVariable", NS)} - {""}
        return frozenset(names)
    return _derived(parsed, "engine_written", make)  # type: ignore[no-any-return]


def _gate(parsed: ParsedDefinition, ts: Any, role_property: str, default: tuple[str, ...],
          extra_roles: tuple[str, ...] = ()) -> Gate:
    props = properties_of(ts)
    if split_list(props.get(role_property)):
        roles, source = split_list(props.get(role_property)), role_property
        roles = tuple(r for r in roles if r != ENGINE_ONLY)
    elif extra_roles:
        roles, source = extra_roles, "candidateStarterGroups"
    elif getattr(ts, "lane", None):
        roles, source = (ts.lane,), "lane"
    else:
        roles, source = default, "default"
    writable, protected = _form_fields(parsed.forms.get(props.get("formId") or ""))
    writable = writable | frozenset(split_list(props.get("message.fields")))
    written = engine_written(parsed)
    return Gate(ts.bpmn_id, tuple(roles), source, writable - written, protected | (writable & written),
                is_start_event(ts), props.get("formId") or None)


def _candidate_starter_groups(parsed: ParsedDefinition) -> tuple[str, ...]:
    """Camunda's ``camunda:candidateStarterGroups`` on the main process: read as ``start.roles``."""
    for root in parsed.trees.values():
        for process in root.iterfind(f".//{{{BPMN_NS}}}process"):
            if process.get("id") == parsed.key:
                return split_list(process.get(f"{{{CAMUNDA_NS}}}candidateStarterGroups"))
    return ()


def start_gate(parsed: ParsedDefinition) -> Gate:
    """The main process's plain start event; a process without one (it starts on a message or a timer)
    cannot be started by a person: its gate lets nobody in."""
    def make() -> Gate:
        for ts in parsed.spec.task_specs.values():
            if is_none_start_event(ts):
                return _gate(parsed, ts, "start.roles", START_DEFAULT, _candidate_starter_groups(parsed))
        return Gate("", (), "no plain start event", frozenset(), frozenset())
    return _derived(parsed, "start_gate", make)  # type: ignore[no-any-return]


def message_gates(parsed: ParsedDefinition, name: str) -> dict[str, Gate]:
    """Element id → gate of every event that catches message ``name`` (start events included).

    Read from the XML: SpiffWorkflow moves the messages of the events after an event-based gateway onto
    the gateway, so its specs no longer say which event catches which message."""
    def make() -> dict[str, dict[str, Gate]]:
        specs = {ts.bpmn_id: ts for ts in _specs(parsed) if getattr(ts, "bpmn_id", None)}
        names = {m.get("id"): m.get("name") for root in parsed.trees.values()
                 for m in root.iterfind(f".//{{{BPMN_NS}}}message")}
        gates: dict[str, dict[str, Gate]] = {}
        for root in parsed.trees.values():
            for local in CATCHING:
                for element in root.iterfind(f".//{{{BPMN_NS}}}{local}"):
                    definition = element.find(f"{{{BPMN_NS}}}messageEventDefinition")
                    ref = element.get("messageRef") if definition is None else definition.get("messageRef")
                    ts, message = specs.get(element.get("id")), names.get(ref)
                    if ts is not None and message:
                        gate = _gate(parsed, ts, "message.senders", SEND_DEFAULT)
                        carried = correlation_fields(parsed, message) - engine_written(parsed)
                        gates.setdefault(message, {})[ts.bpmn_id] = replace(gate,
                                                                            writable=gate.writable | carried)
        return gates
    return _derived(parsed, "message_gates", make).get(name, {})  # type: ignore[no-any-return]


def correlation_fields(parsed: ParsedDefinition, name: str) -> frozenset[str]:
    """The payload fields the model's BPMN correlation properties read from message ``name`` (the names of
    each ``correlationPropertyRetrievalExpression``): the model declares the message carries them, and
    SpiffWorkflow evaluates those expressions over the payload when the message is caught."""
    def make() -> dict[str, frozenset[str]]:
        ids = {m.get("id"): m.get("name") for root in parsed.trees.values()
               for m in root.iterfind(f".//{{{BPMN_NS}}}message")}
        found: dict[str, set[str]] = {}
        for root in parsed.trees.values():
            for retrieval in root.iterfind(f".//{{{BPMN_NS}}}correlationPropertyRetrievalExpression"):
                message = ids.get(retrieval.get("messageRef"))
                # BPMN writes formalExpression; SpiffWorkflow (and the import, engine.definitions) messagePath
                text = (retrieval.findtext(f"{{{BPMN_NS}}}messagePath")
                        or retrieval.findtext(f"{{{BPMN_NS}}}formalExpression") or "").strip()
                if message and text:
                    found.setdefault(message, set()).update(_names_read(text))
        return {message: frozenset(names) for message, names in found.items()}
    return _derived(parsed, "correlation_fields", make).get(name, frozenset())  # type: ignore[no-any-return]


def _names_read(expression: str) -> set[str]:
    try:
        tree = ast.parse(expression, mode="eval")
    except SyntaxError:  # lint refuses it; nothing to declare
        return set()
    called = {id(n.func) for n in ast.walk(tree) if isinstance(n, ast.Call)}
    return {n.id for n in ast.walk(tree)
            if isinstance(n, ast.Name) and isinstance(n.ctx, ast.Load) and id(n) not in called}


def who_may_start(parsed: ParsedDefinition) -> list[str]:
    return list(start_gate(parsed).roles)


# -- the checks ---------------------------------------------------------------------------------------------
def _check_keys(data: dict[str, Any], writable: Iterable[str], protected: Iterable[str], where: str) -> None:
    allowed = set(writable)
    refused = sorted(k for k in data if k not in allowed)
    if refused:
        locked = [k for k in refused if k in set(protected)]
        why = (f" ({', '.join(locked)}: read-only, computed or written by the engine)" if locked else "")
        raise UndeclaredField(f"{', '.join(refused)} {'is' if len(refused) == 1 else 'are'} not declared by "
                              f"{where}{why}; nothing was stored.", fields=refused)


def check_start(parsed: ParsedDefinition, principal: Principal, variables: dict[str, Any]
                ) -> dict[str, Any]:
    """Raises NotPermitted, UndeclaredField or ValidationFailed (the start form's rules); returns the typed
    variables."""
    gate = start_gate(parsed)
    if not gate.allows(principal):
        why = (f"Only holders of the role {', '.join(gate.roles)} may start '{parsed.key}'." if gate.roles
               else f"Only the engine starts '{parsed.key}'; nobody starts it by hand.")
        raise NotPermitted(why,
                           action="instance.start_refused", object_type="process", object_id=parsed.key,
                           after={"process": parsed.key, "roles": sorted(principal.roles),
                                  "allowed": list(gate.roles), "why": "role"})
    _check_keys(variables, gate.writable, gate.protected, f"the start form of '{parsed.key}'")
    form = parsed.forms.get(gate.form_id or "")
    return forms.validate(form, variables) if form is not None else variables


def check_send(gates: Iterable[Gate], principal: Principal, name: str, payload: dict[str, Any], *,
               every: bool = False) -> None:
    """The sender against the events the message may reach: at least one must let them in, and the
    payload must be declared by one that does. ``every``: the message reaches all of ``gates`` (the events
    of an instance waiting for it now), so each must let the sender in and declare the payload. Raises
    NotPermitted or UndeclaredField."""
    gates = list(gates)
    open_to = [g for g in gates if g.allows(principal)]
    if not open_to or (every and len(open_to) < len(gates)):
        allowed = sorted({r for g in gates if not g.allows(principal) for r in g.roles})
        why = (f"Only holders of the role {', '.join(allowed)} may send the message '{name}' here." if allowed
               else f"Nobody but the engine may send the message '{name}' here.")
        raise NotPermitted(why,
                           action="message.refused", object_type="message", object_id=name,
                           after={"message": name, "roles": sorted(principal.roles), "allowed": allowed,
                                  "why": "role" if gates else "no active process catches this message"})
    writable = set.intersection(*(set(g.writable) for g in open_to)) if every else \
        {k for g in open_to for k in g.writable}
    protected = {k for g in open_to for k in g.protected}
    _check_keys(payload, writable, protected, f"the message '{name}'")


@contextmanager
def refusals(db: Database, context: RequestContext) -> Iterator[None]:
    """Record a NotPermitted raised inside in the audit trail (as the request's actor, at its time, with its
    correlation id), in a unit of work of its own (the refused one has rolled back: nothing else it did is
    kept), then let it go on."""
    actor, at = context.actor, context.at
    try:
        yield
    except NotPermitted as exc:
        with db.transaction(context.correlation_id) as uow:
            audit.record(uow, actor, exc.action, exc.object_type, exc.object_id, exc.object_id,
                         at=at, after=exc.after, reason=exc.message)
        raise
