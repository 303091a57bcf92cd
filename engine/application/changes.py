"""Opening a change control for a draft model version or master-data version (``gmp`` governance runs it)."""

from __future__ import annotations

from typing import Any

from sqlalchemy import select

from engine.application.instances import InstanceServices
from engine.application.tasks import TaskServices
from engine.errors import GmpflowError
from engine.identity import Principal
from engine.request_context import RequestContext, as_request
from engine.runtime import tasks
from engine.store.models import HumanTask


class ChangeRequests(InstanceServices, TaskServices):
    """Opening change controls (the process that alone makes a version effective)."""

    def request_change(self, caller: Principal | RequestContext, variables: dict[str, Any],
                       business_key: str | None = None) -> dict[str, Any]:
        """Open a change control for a draft deployment or master-data version: start ``change_control``
        with ``variables`` (``subject_kind`` and the request form's fields) and complete the requester's
        request task with them. ``{instance, task, error}``: when the request form refuses the values, the
        task stays open for the requester and ``error`` says why. The start and the request task's completion
        are one request of the caller's (``as_request``), at its time."""
        context = as_request(caller, self.clock)
        started = self.start_instance(context, "change_control", business_key, variables)
        element = ("request_deployment" if variables.get("subject_kind") == "deployment"
                   else "request_masterdata")
        with self.db.read() as session:
            task: tasks.Task | None = session.scalar(select(HumanTask).where(
                HumanTask.instance_id == started.id, HumanTask.element_id == element))
        error = None
        if task is not None:
            try:
                task = self.complete_task(context, task.id, {k: v for k, v in variables.items()
                                                               if k != "subject_kind"})
            except GmpflowError as exc:
                error = exc
        return {"instance": started, "task": task, "error": error}

    def propose_masterdata_change(self, caller: Principal | RequestContext, type_name: str, key: str,
                                  number: int, request: dict[str, Any]) -> dict[str, Any]:
        """Submit a master-data draft for review and open its change control (``request``: the request
        form's ``reason``, ``product_impact``, ``effective_date``); answers like ``request_change``."""
        context = as_request(caller, self.clock)
        version = self.masterdata.version(type_name, key, number)
        if version.status == "draft":
            self.masterdata.submit(context, type_name, key, number)
        return self.request_change(context, {"subject_kind": "masterdata", "record_type": type_name,
                                               "record_key": key, "version_number": number, **request},
                                   business_key=f"{type_name} {key} v{number}")
