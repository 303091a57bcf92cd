"""The task inbox: list, read, claim, unclaim, complete."""

from __future__ import annotations

from typing import Any

from webapp import jsonio
from webapp.api import api, body, q_bool, q_choice, q_int, q_text
from webapp.api.auth import engine, principal
from webapp.api.openapi import operation
from webapp.api.schemas import listing, ref

STATES = ("open", "claimed", "completed", "cancelled")
FILTERS = [{"name": "state", "schema": {"type": "string", "enum": list(STATES)},
            "description": "default: open and claimed"},
           {"name": "mine", "schema": {"type": "boolean"}, "description": "only tasks claimed by me"},
           {"name": "role", "schema": {"type": "string", "maxLength": 100}},
           {"name": "instance_id", "schema": {"type": "integer", "minimum": 0}}]


@api.get("/tasks")
@operation("Tasks I may work on (admins see all), mine first, then by due date", tags=["tasks"],
           response=listing("Task"), query=FILTERS)
def list_tasks() -> Any:
    rows = engine().list_tasks(principal(), state=q_choice("state", STATES), mine=q_bool("mine"),
                               role=q_text("role", 100), instance_id=q_int("instance_id"))
    return [jsonio.task(t) for t in rows]


@api.get("/tasks/<id:task_id>")
@operation("One task", tags=["tasks"], response=ref("Task"))
def get_task(task_id: int) -> Any:
    return jsonio.task(engine().get_task(principal(), task_id))


@api.post("/tasks/<id:task_id>/claim")
@operation("Claim a task (holders of its lane role)", tags=["tasks"], response=ref("Task"))
def claim_task(task_id: int) -> Any:
    return jsonio.task(engine().claim_task(principal(), task_id))


@api.post("/tasks/<id:task_id>/unclaim")
@operation("Give a claimed task back to the lane", tags=["tasks"], response=ref("Task"))
def unclaim_task(task_id: int) -> Any:
    return jsonio.task(engine().unclaim_task(principal(), task_id))


@api.post("/tasks/<id:task_id>/complete")
@operation("Complete a task with form data (and a signature where the model asks)", tags=["tasks"],
           body="CompleteTaskRequest", response=ref("Task"),
           description="A task that is no longer open answers 409 `task_not_open` and nothing changes; "
                       "data outside the form's limits answers 400 with per-field `errors`.")
def complete_task(task_id: int) -> Any:
    data = body("CompleteTaskRequest")
    return jsonio.task(engine().complete_task(principal(), task_id, data.get("data"), data.get("signature")))
