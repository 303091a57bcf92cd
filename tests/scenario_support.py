"""Shared machinery for the process scenarios (tests/test_scenarios_*.py).

Every scenario runs twice: once on one engine (the instance stays in the live-workflow cache between
steps) and once with save-and-reload between every step: before each action a new ``Gmpflow`` is built
on the same database and clock, so each step restores the workflow from its stored state.
"""

from __future__ import annotations

from typing import Any

import pytest

from engine.clock import FrozenClock
from engine.identity import Principal
from engine.services import Gmpflow
from engine.store import Database
from engine.store.models import HumanTask


class ScenarioEngine:
    """The engine a scenario drives; with ``reload`` every call goes to a freshly built engine."""

    def __init__(self, database: Database, clock: FrozenClock, first: Gmpflow, reload: bool) -> None:
        self.database, self.clock, self.reload = database, clock, reload
        self.current = first
        self.engines_built = 0

    def restart(self) -> Gmpflow:
        """A new engine on the same database (a process restart): nothing survives but the database."""
        self.current = Gmpflow(self.database, self.clock, change_control="off")
        self.engines_built += 1
        return self.current

    def __getattr__(self, name: str) -> Any:
        engine = self.restart() if self.reload else self.current
        return getattr(engine, name)

    # -- helpers that read like the scenario ------------------------------------------------------------
    def open_tasks(self, who: Principal, instance_id: int) -> list[HumanTask]:
        return self.list_tasks(who, instance_id=instance_id)

    def task(self, who: Principal, instance_id: int, element_id: str) -> HumanTask:
        """The one open task of ``element_id`` that ``who`` sees (fails when there is none or several)."""
        found = [t for t in self.open_tasks(who, instance_id) if t.element_id == element_id]
        assert len(found) == 1, [t.element_id for t in self.open_tasks(who, instance_id)]
        return found[0]

    def complete(self, who: Principal, instance_id: int, element_id: str, data: dict[str, Any] | None = None
                 ) -> HumanTask:
        return self.complete_task(who, self.task(who, instance_id, element_id).id, data or {})

    def open_elements(self, who: Principal, instance_id: int) -> list[str]:
        return sorted(t.element_id for t in self.open_tasks(who, instance_id))

    def status(self, instance_id: int) -> str:
        return self.instance_detail(instance_id)["instance"].status

    def variables(self, instance_id: int) -> dict[str, Any]:
        return self.instance_detail(instance_id)["variables"]

    def path(self, instance_id: int, *types: str) -> list[str]:
        """Element ids of the completed steps, in order (only of the given spec class names when given)."""
        return [h["element_id"] for h in self.instance_detail(instance_id)["history"]
                if not types or h["type"] in types]

    def run_jobs(self) -> int:
        """Run due jobs until none is due (jobs can make others due)."""
        total = 0
        while (ran := self.run_jobs_once()):
            total += ran
        return total


@pytest.fixture(params=[False, True], ids=["cached", "reload"])
def reload(request: pytest.FixtureRequest) -> bool:
    return bool(request.param)


@pytest.fixture
def flow(engine: Gmpflow, database: Database, clock: FrozenClock, reload: bool) -> ScenarioEngine:
    return ScenarioEngine(database, clock, engine, reload)
