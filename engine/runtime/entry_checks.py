"""Entry checks: what a user task's completion must satisfy before anybody signs it.

A user task's property ``entry.check`` names an operation registered with ``at_entry=True``. When the task
is completed, after the form and the guards and BEFORE the signature is checked, the engine calls it with
``{"variables": <the task's data with the submitted data over it>}`` inside the completion's own
transaction (``CallContext.unit_of_work``, ``actor``, ``at``, ``element_id``): what it writes (e.g. a
material consumption) commits with the completion or not at all.

The operation refuses by raising ``EntryRefused`` (its ``code`` the reason, ``errors`` the field). The
completion then rolls back — no signature, no lockout count, nothing it wrote — and the caller gets
``Refused``, which carries what to keep of the attempt: ``Gmpflow.complete_task`` records it as an audit
event ``task.entry_refused`` in a unit of work of its own, so a refused attempt stays visible.

Lint (``engine.definitions.lint``) checks that ``entry.check`` names an entry operation that may run in
that process (``only_in``), and that no service task calls one.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from engine.definitions.properties import properties_of
from engine.errors import EntryRefused
from engine.operations import CallContext, OperationRegistry

if TYPE_CHECKING:
    from datetime import datetime

    from engine.audit import Actor
    from engine.runtime.instances import Live
    from engine.runtime.rows import TaskRow
    from engine.store.db import UnitOfWork

ENTRY_CHECK = "entry.check"


class Refused(EntryRefused):
    """An entry check refused a completion; ``attempt`` is what the audit event of the attempt keeps."""

    def __init__(self, cause: EntryRefused, attempt: dict[str, Any]) -> None:
        super().__init__(cause.message, errors=cause.errors, code=cause.code)
        self.attempt = attempt


def run(registry: OperationRegistry, uow: UnitOfWork, live: Live, task: TaskRow, spiff_task: Any,
        data: dict[str, Any], actor: Actor, now: datetime) -> None:
    """Run the task's entry check, if its model names one; raises ``Refused``."""
    name = properties_of(spiff_task.task_spec).get(ENTRY_CHECK)
    if not name:
        return
    operation = registry.get(name)  # lint made sure it exists and is an entry check
    context = CallContext(idempotency_key=task.task_guid, instance_id=live.row.id, attempt=1,
                          unit_of_work=uow, actor=actor, at=now, element_id=task.element_id)
    try:
        operation.call({"variables": {**spiff_task.data, **data}}, context)
    except EntryRefused as exc:
        raise Refused(exc, {"task_id": task.id, "task": task.name, "element_id": task.element_id,
                            "instance_id": live.row.id, "business_key": live.row.business_key,
                            "check": name, "code": exc.code, "errors": exc.errors, "data": data}) from None
