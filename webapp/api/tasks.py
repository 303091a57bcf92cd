"""The task inbox: list, read, its form, claim, unclaim, complete."""

from __future__ import annotations

from typing import Any

from engine.runtime.tasks import Task
from engine.states import TaskState
from webapp import jsonio
from webapp.api import api, body
from webapp.api.auth import engine, principal
from webapp.api.openapi import operation
from webapp.api.queries import Flag, Query, choice, query_args, text, whole
from webapp.api.schemas import listing, ref
from webapp.request_context import request_context

STATES = ("open", "claimed", "completed", "cancelled")


class TaskFilters(Query):
    state = choice(STATES, description="default: open and claimed")
    mine = Flag(metadata={"description": "only tasks claimed by me"})
    role, instance_id = text(100), whole()


def _shown(*rows: Task) -> list[dict[str, Any]]:
    """Tasks as JSON, each with the manifestation of its signatures (only completed tasks have any)."""
    guids = [r.task_guid for r in rows if r.state == TaskState.COMPLETED]
    signatures = engine().list_signatures(task_guids=guids) if guids else []
    return [jsonio.task(r, signatures) for r in rows]


@api.get("/tasks")
@operation("Tasks I may work on (admins see all), mine first, then by due date", tags=["tasks"],
           response=listing("Task"), query=TaskFilters)
def list_tasks() -> Any:
    rows = engine().list_tasks(principal(), **query_args())
    return _shown(*rows)


@api.get("/tasks/<id:task_id>")
@operation("One task", tags=["tasks"], response=ref("Task"))
def get_task(task_id: int) -> Any:
    shown = _shown(engine().get_task(principal(), task_id))[0]
    if shown["signature_meaning"] and shown["state"] in ("open", "claimed"):  # what its signature covers
        shown["signed_record"] = engine().task_view(principal(), task_id)["signed_record"]
    return shown


@api.get("/tasks/<id:task_id>/form")
@operation("The form of one task (form-js), as its page shows it", tags=["tasks"], response=ref("TaskForm"),
           description="`form` is the form-js definition the task's `formId` (or Camunda's "
                       "`camunda:formKey`) names, null when the task has no form gmpflow shows; visible to "
                       "whoever may see the task (403 otherwise).")
def get_task_form(task_id: int) -> Any:
    view = engine().task_view(principal(), task_id)
    return {"task_id": task_id, "form_id": view["task"].form_id, "form": view["form"]}


@api.post("/tasks/<id:task_id>/claim")
@operation("Claim a task (holders of its lane role)", tags=["tasks"], response=ref("Task"))
def claim_task(task_id: int) -> Any:
    return jsonio.task(engine().claim_task(request_context(), task_id))


@api.post("/tasks/<id:task_id>/unclaim")
@operation("Give a claimed task back to the lane", tags=["tasks"], response=ref("Task"))
def unclaim_task(task_id: int) -> Any:
    return jsonio.task(engine().unclaim_task(request_context(), task_id))


@api.post("/tasks/<id:task_id>/complete")
@operation("Complete a task with form data (and a signature where the model asks)", tags=["tasks"],
           body="CompleteTaskRequest", response=ref("Task"),
           description="A task that is no longer open answers 409 `task_not_open` and nothing changes; "
                       "data outside the form's limits answers 400 with per-field `errors`. Where the model "
                       "sets `signature.meaning`, `signature` = `{username, password, meaning}` is required; "
                       "a refused signature answers 403 with one of the codes `signature_required`, "
                       "`signature_user_mismatch`, `signature_password_invalid`, `signature_account_locked`, "
                       "`signature_password_change_required`, `signature_meaning_not_allowed`, "
                       "`signature_four_eyes`; the task stays open, and every refused signing attempt "
                       "counts toward the user's lockout. A task whose signature covers a record "
                       "(`signature.record`, e.g. the batch review and disposition) needs "
                       "`signature.record_sha256`, the hash of the record as shown (422 "
                       "`record_sha256_required`); when the record changed since, 409 `record_changed` and "
                       "nothing is stored or counted. A task of a record locked by its disposition answers "
                       "409 `record_locked`.")
def complete_task(task_id: int) -> Any:
    data = body()
    done = engine().complete_task(request_context(), task_id, data.get("data"), data.get("signature"))
    return _shown(done)[0]
