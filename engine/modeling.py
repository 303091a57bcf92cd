"""Reads for the process owner's modeler and the per-version process overview.

``process_versions``: every process definition with each version's status and how many instances
run on it. ``element_counts``: per BPMN element of one deployment, the open human tasks, the pending
jobs and the open incidents of its unfinished instances (the overview's overlays). ``bundle_files``:
a deployment's files grouped for the browser modeler (BPMN, DMN, forms).
"""

from __future__ import annotations

from collections import defaultdict
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from engine.definitions.bundle import kind_of
from engine.states import InstanceStatus, JobState, TaskState
from engine.store.models import Deployment, HumanTask, Incident, Job, ProcessInstance

FINISHED = (InstanceStatus.COMPLETED, InstanceStatus.TERMINATED)


def process_versions(session: Session) -> list[dict[str, Any]]:
    """``[{key, name, versions: [{deployment, running, finished, by_status}]}]``, newest version first."""
    counts: dict[int, dict[str, int]] = defaultdict(dict)
    for dep_id, status, n in session.execute(select(ProcessInstance.deployment_id, ProcessInstance.status,
                                                    func.count()).group_by(ProcessInstance.deployment_id,
                                                                           ProcessInstance.status)):
        counts[dep_id][status] = n
    by_key: dict[str, list[Deployment]] = defaultdict(list)
    for dep in session.scalars(select(Deployment).order_by(Deployment.key, Deployment.version.desc())):
        by_key[dep.key].append(dep)
    result = []
    for key, deps in by_key.items():
        versions = []
        for dep in deps:
            by_status = counts.get(dep.id, {})
            finished = sum(n for s, n in by_status.items() if s in FINISHED)
            versions.append({"deployment": dep, "by_status": by_status, "finished": finished,
                             "running": sum(by_status.values()) - finished})
        result.append({"key": key, "name": deps[0].name, "versions": versions})
    return result


def element_counts(session: Session, deployment_id: int) -> dict[str, dict[str, int]]:
    """Element id → ``{tasks, jobs, incidents}`` (non-zero entries only) for one deployment."""
    live = select(ProcessInstance.id).where(ProcessInstance.deployment_id == deployment_id,
                                            ProcessInstance.status.not_in(FINISHED))
    result: dict[str, dict[str, int]] = defaultdict(dict)
    queries = {
        "tasks": select(HumanTask.element_id, func.count()).where(
            HumanTask.instance_id.in_(live), HumanTask.state.in_((TaskState.OPEN, TaskState.CLAIMED))
        ).group_by(HumanTask.element_id),
        "jobs": select(Job.element_id, func.count()).where(
            Job.instance_id.in_(live), Job.element_id.is_not(None),
            Job.state.in_((JobState.PENDING, JobState.RUNNING))).group_by(Job.element_id),
        "incidents": select(Incident.element_id, func.count()).where(
            Incident.instance_id.in_(live), Incident.element_id.is_not(None),
            Incident.resolved_at.is_(None)).group_by(Incident.element_id),
    }
    for name, query in queries.items():
        for element_id, n in session.execute(query):
            if element_id:
                result[element_id][name] = n
    return dict(result)


def bundle_files(dep: Deployment) -> dict[str, dict[str, str]]:
    """A deployment's files as ``{"bpmn": {name: text}, "dmn": {...}, "form": {...}}``."""
    grouped: dict[str, dict[str, str]] = {"bpmn": {}, "dmn": {}, "form": {}}
    for name, text in sorted(dep.files.items()):
        kind = kind_of(name)
        if kind:
            grouped[kind][name] = text
    return grouped
