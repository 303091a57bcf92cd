"""Run one public BPMN file two ways: with SpiffWorkflow 3.2.0 alone (its own parser and script engine, the
way its users run it), and with gmpflow through its service API (deploy, start, complete tasks as a person
holding every role the file names). Each run ends in an outcome: ``completed`` with the end data, ``waiting``
(a timer, a message or nobody's task holds it), or ``refused`` with the problem code (gmpflow's lint or
SpiffWorkflow's parser or a failed step)."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn import BpmnWorkflow
from SpiffWorkflow.camunda.parser import CamundaParser
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.util.task import TaskState

from engine.audit import Actor
from engine.definitions.bundle import Bundle
from engine.definitions.interchange import lane_role
from engine.errors import GmpflowError, ValidationFailed
from engine.identity import Principal
from engine.services import Gmpflow

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
MAX_ROUNDS = 30  # rounds of completing every open task: enough for every loop of the corpus
TESTER = "conformance"


@dataclass
class Outcome:
    status: str                      # completed | waiting | refused
    data: dict[str, Any] = field(default_factory=dict)
    code: str | None = None          # why refused

    def as_dict(self) -> dict[str, Any]:
        found: dict[str, Any] = {"status": self.status}
        if self.status == "completed":
            found["data"] = self.data
        if self.code:
            found["code"] = self.code
        return found


def process_id(path: Path) -> str:
    """The process a file is run by: its one executable process, else its first one."""
    processes = etree.parse(str(path)).getroot().findall(f".//{{{BPMN_NS}}}process")
    runnable = [p for p in processes if p.get("isExecutable", "true") != "false"]
    return (runnable or processes)[0].get("id")


def chosen_process(path: Path) -> str | None:
    """The process gmpflow is told to deploy when the file holds several top-level executable processes (the
    one SpiffWorkflow is told to run, ``process_id``); None when the file holds one."""
    root = etree.parse(str(path)).getroot()
    called = {c.get("calledElement") for c in root.iter(f"{{{BPMN_NS}}}callActivity")}
    top = [p for p in root.iter(f"{{{BPMN_NS}}}process")
           if p.get("isExecutable", "true") != "false" and p.get("id") not in called]
    return process_id(path) if len(top) > 1 else None


def plain(data: dict[str, Any]) -> dict[str, Any]:
    """End data as JSON would carry it (tuples as lists), for comparing the two runs."""
    import json
    return json.loads(json.dumps(data, default=str))


def run_alone(workflow: BpmnWorkflow) -> None:
    """SpiffWorkflow on its own: engine steps, then every ready manual task completed with no data, round by
    round, until nothing is ready (or ``MAX_ROUNDS``)."""
    workflow.do_engine_steps()
    for _ in range(MAX_ROUNDS):
        ready = workflow.get_tasks(state=TaskState.READY, manual=True)
        if not ready:
            break
        for task in ready:
            task.run()
        workflow.do_engine_steps()


def run_spiff(path: Path) -> Outcome:
    try:
        # the Camunda folder's files as SpiffWorkflow's users run them: with its Camunda parser
        parser = CamundaParser() if "camunda" in path.parts else SpiffBpmnParser(validator=VALIDATOR)
        parser.add_bpmn_files([str(path)])
        pid = process_id(path)
        workflow = BpmnWorkflow(parser.get_spec(pid), parser.get_subprocess_specs(pid))
        run_alone(workflow)
    except Exception as exc:  # every failure of SpiffWorkflow alone is an outcome of the comparison
        return Outcome("refused", code=type(exc).__name__)
    if not workflow.is_completed():
        return Outcome("waiting")
    return Outcome("completed", plain(dict((workflow.last_task or workflow.task_tree).data)))


def lane_roles(path: Path) -> set[str]:
    """The roles the file's lanes name (a lane 'Supervisor' names the role ``supervisor``)."""
    root = etree.parse(str(path)).getroot()
    return {lane_role(lane.get("name")) for lane in root.iter(f"{{{BPMN_NS}}}lane") if lane.get("name")}


def holder_of_every_role(engine: Gmpflow, admin: Actor, path: Path) -> Principal:
    """A person holding every role of the engine, the roles the file's lanes name created first (as an admin
    would)."""
    known = {role.name for role in engine.list_roles()}
    for role in sorted(lane_roles(path) - known):
        try:
            engine.add_role(admin, role, "a lane of a conformance model", "conformance: the lane's role")
        except ValidationFailed:  # not a role name ('Tester', 'A'): the lint will say the lane names no role
            pass
    return Principal(TESTER, "Conformance Tester", frozenset(r.name for r in engine.list_roles()))


def complete_round_by_round(engine: Gmpflow, person: Principal, instance_id: int) -> None:
    """Complete every open task with no data, round by round, until none is open (or ``MAX_ROUNDS``)."""
    for _ in range(MAX_ROUNDS):
        tasks = engine.list_tasks(person, instance_id=instance_id)
        if not tasks:
            break
        for task in tasks:  # one completion may close another (first approval wins): skip those
            if task.id in {t.id for t in engine.list_tasks(person, instance_id=instance_id)}:
                engine.complete_task(person, task.id, {})


def run_gmpflow(engine: Gmpflow, path: Path) -> Outcome:
    """Deploy the file, start it, complete every open task round by round (as a person holding every role
    of the engine, the file's lanes added as roles first, as an admin would)."""
    admin = Actor("admin", "Ada Admin")
    person = holder_of_every_role(engine, admin, path)
    try:
        dep, _ = engine.deploy(admin, bundle=Bundle({path.name: path.read_text(encoding="utf-8")}),
                               activate=True, process=chosen_process(path))
        instance = engine.start_instance(person, dep.key, f"{path.stem}", {})
        complete_round_by_round(engine, person, instance.id)
        detail = engine.instance_detail(instance.id)
    except GmpflowError as exc:
        problems = exc.context.get("problems") or []
        return Outcome("refused", code=problems[0]["code"] if problems else exc.code)
    if detail["instance"].status != "completed":
        return Outcome("waiting")
    return Outcome("completed", plain(detail["variables"]))
