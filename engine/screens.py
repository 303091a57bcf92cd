"""Read models for people's screens: the inbox with process and business key, a task with its form,
an instance with its diagram and audit trail. Reads only; the services open the session."""

from __future__ import annotations

import json
import re
from typing import Any
from uuid import UUID

from lxml import etree
from sqlalchemy.orm import Session

from engine import authority, signatures
from engine.definitions.properties import properties_of
from engine.identity import Principal
from engine.runtime import rows, tasks
from engine.runtime.instances import InstanceRuntime
from engine.spiff.events import is_message, is_start_event, is_timer
from engine.spiff.parsing import ParsedDefinition
from engine.states import JobState, TaskState
from engine.store.dbapi import dbapi


def inbox(session: Session, principal: Principal, *, state: str | None = None, mine: bool = False,
          process: str | None = None, business_key: str | None = None,
          limit: int = 500) -> list[dict[str, Any]]:
    """Open and claimed tasks (or those in ``state``) the principal may work on, mine first, then by due
    time; each row: ``task``, ``process_key``, ``process_name``, ``business_key``."""
    which = tasks.inbox_filter(principal, state=state, mine=mine, process=process, business_key=business_key)
    return [{"task": task, "process_key": key, "process_name": name, "business_key": bkey}
            for task, key, name, bkey in rows.inbox(dbapi(session), which, limit)]


def task_view(session: Session, runtime: InstanceRuntime, principal: Principal,
              task_id: int) -> dict[str, Any]:
    """A task with its instance, process name and form definition (None when the task has no form), and
    ``four_eyes_conflict``: why the principal may not sign this open task (None when they may), so the page
    says so before the signing dialog asks for a password.

    Raises NotFound, or PermissionDenied when an open task is not the principal's to see.
    """
    task = tasks.get_task(dbapi(session), task_id)
    tasks.check_may_see(session, principal, task)
    row = runtime.get_row(session, task.instance_id)
    parsed = runtime.specs.get_by_id(session, row.deployment_id)
    form = parsed.forms.get(task.form_id) if task.form_id else None
    is_open = task.state in (TaskState.OPEN, TaskState.CLAIMED)
    inputs = form_inputs(runtime, session, task, form) if is_open else {}
    conflict = None
    if is_open and task.signature_meaning:
        data = runtime.read(session, task.instance_id).workflow.get_task_from_id(UUID(task.task_guid)).data
        conflict = signatures.four_eyes_conflict(session, row, task, data, principal.username)
    return {"task": task, "instance": row, "process_name": parsed.name, "form": form, "inputs": inputs,
            "four_eyes_conflict": conflict, "screen": _screen(parsed, task.element_id) if is_open else None}


def _screen(parsed: ParsedDefinition, element_id: str) -> str | None:
    """The user task's ``screen`` property: the page layout the web app offers for it (e.g. ``ebr_step``);
    its form stays what the server validates."""
    for spec in [parsed.spec, *parsed.subprocess_specs.values()]:
        for task_spec in spec.task_specs.values():
            if getattr(task_spec, "bpmn_id", None) == element_id:
                return properties_of(task_spec).get("screen") or None
    return None


def form_inputs(runtime: InstanceRuntime, session: Session, task: tasks.Task, form: dict[str, Any] | None
                ) -> dict[str, Any]:
    """What an open task's form shows before anyone types: the task's variables that its form names (field
    keys, templated text such as ``{{deviation.id}}``), as JSON. No other variable of the instance reaches
    the page."""
    if not form:
        return {}
    named = set(re.findall(r"[A-Za-z_]\w*", json.dumps(form)))
    data = runtime.read(session, task.instance_id).workflow.get_task_from_id(UUID(task.task_guid)).data
    return json.loads(json.dumps({k: v for k, v in data.items() if k in named}, default=str))


def diagram_xml(parsed: ParsedDefinition) -> str:
    """The BPMN document that holds the process itself (the first one when none names it)."""
    trees = list(parsed.trees.values())
    chosen = next((t for t in trees if t.xpath("//*[local-name()='process'][@id=$id]", id=parsed.key)),
                  trees[0] if trees else None)
    return etree.tostring(chosen, encoding="unicode") if chosen is not None else ""


def markers(detail: dict[str, Any]) -> dict[str, str]:
    """Element id → ``completed``, ``active`` or ``failed`` for an instance detail (later wins)."""
    marks = {h["element_id"]: "completed" for h in detail["history"]}
    marks.update({t.element_id: "active" for t in detail["tasks"]
                  if t.state in (TaskState.OPEN, TaskState.CLAIMED)})
    marks.update({j.element_id: "active" for j in detail["jobs"]
                  if j.element_id and j.state in (JobState.PENDING, JobState.RUNNING)})
    marks.update({i.element_id: "failed" for i in detail["incidents"]
                  if i.element_id and i.resolved_at is None})
    return marks



def start_option(parsed: ParsedDefinition, principal: Principal) -> dict[str, Any]:
    """How a process starts, for the start page, from ``engine.authority``'s gates: ``how`` is ``form``
    (the principal may start it: ``form`` is its start form, or None), ``others`` (a person may, not this
    one: ``roles``), ``message`` (``senders`` per message start event), or ``engine`` (only the engine or a
    timer starts it: ``timer`` says whether a timer does)."""
    gate = authority.start_gate(parsed)
    option: dict[str, Any] = {"key": parsed.key, "name": parsed.name, "roles": list(gate.roles),
                              "form": None, "senders": {}, "timer": False}
    messages: dict[str, list[str]] = {}
    for ts in parsed.spec.task_specs.values():
        definition = getattr(ts, "event_definition", None)
        if not is_start_event(ts):
            continue
        if is_timer(definition):
            option["timer"] = True
        elif is_message(definition):
            found = authority.message_gates(parsed, definition.name).get(ts.bpmn_id)
            if found is not None and found.roles:
                messages[definition.name] = list(found.roles)
    option["senders"] = messages
    if gate.allows(principal):
        option["how"], option["form"] = "form", parsed.forms.get(gate.form_id or "")
    elif gate.roles:
        option["how"] = "others"
    else:
        option["how"] = "message" if messages else "engine"
    return option
