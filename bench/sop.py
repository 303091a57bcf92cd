"""``gmpflow bench`` section: the cost of one SOP step at step 10 and at step 1,000 of a 1,000-step SOP.

Each step runs as its own ``sop_step`` instance (see ``gmp.batch``), so the cost per step should not grow
with the step's number. Measured per step: the operator completes the step's ``perform`` task (signed
``Performed``) and the worker runs the jobs that follow (equipment check, ``sop.advance`` starting the next
step instance), until the next step's task is open: the whole cost of one step through the service layer,
on a fresh SQLite file.
"""

from __future__ import annotations

import tempfile
import time
from pathlib import Path
from typing import Any

from argon2 import PasswordHasher, profiles

from bench.timing import around
from engine import identity
from engine.audit import Actor
from engine.clock import FrozenClock
from engine.operations import Operation, builtin_registry
from engine.services import Gmpflow
from engine.store import Database

ROOT = Path(__file__).resolve().parents[1]
PROCESSES = [ROOT / "gmp" / "processes" / "sop_step", ROOT / "gmp" / "processes" / "sop_execution"]
PASSWORD = "bench password 1"


def _stub(name: str) -> Operation:
    return Operation(name, lambda params, context: {"applied": True}, idempotent=True,
                     description="bench stand-in for the ERP or the MES")


def sop_step_costs(steps: int = 1000, probes: tuple[int, ...] = (10, 1000)) -> dict[str, Any]:
    """Milliseconds for one complete SOP step (task completion and its jobs) at the probed step numbers
    (``bench.timing.around`` each)."""
    hasher = identity._hasher
    # signing is measured, not argon2's cost
    identity._hasher = PasswordHasher.from_parameters(profiles.CHEAPEST)
    try:
        with tempfile.TemporaryDirectory() as folder:
            registry = builtin_registry().extended([_stub("erp.report_production"),
                                                    _stub("mes.report_performance")])
            engine = Gmpflow(Database(f"sqlite:///{folder}/bench.db"), FrozenClock(), registry=registry,
                             change_control="off")
            engine.init_database()
            actor = Actor.system()
            engine.add_user(actor, "bench-op", "Bench Operator", PASSWORD, ["operator"])
            operator = engine.principal("bench-op")
            recipe = {"description": "bench SOP", "steps": [
                {"number": n, "instruction": f"Step {n}: do it.",
                 "parameters": [{"name": "value", "unit": "g", "target": 10, "low": 9, "high": 11,
                                 "critical": False}]}
                for n in range(1, steps + 1)]}
            version = engine.masterdata.create_record(actor, "recipe", "SOP-BENCH", "bench SOP", recipe)
            engine.masterdata.submit(actor, "recipe", "SOP-BENCH", 1)
            engine.masterdata.make_effective(actor, version.id, None, None)
            for path in PROCESSES:
                engine.deploy(actor, [path])
            engine.correlate(actor, "batch_execution_requested", {"business_key": "BENCH"},
                             {"batch_id": "BENCH", "order_id": "MO-BENCH", "product": "P", "quantity": 1,
                              "recipe_key": "SOP-BENCH", "recipe_version": 1,
                              "recipe_version_id": version.id})
            while engine.run_jobs_once():
                pass
            signature = {"username": "bench-op", "password": PASSWORD, "meaning": "Performed"}
            data = {"values": [{"name": "value", "value": 10}], "materials_used": []}
            timings: dict[int, float] = {}
            for n in range(1, steps + 1):
                [task] = engine.list_tasks(operator)
                started = time.perf_counter()
                engine.complete_task(operator, task.id, data, signature)
                while engine.run_jobs_once():
                    pass
                timings[n] = (time.perf_counter() - started) * 1000
            batch = engine.list_instances(key="sop_execution", business_key="BENCH")[0][0]
            waiting_for_yield = [t.element_id for t in engine.list_tasks(operator)] == ["record_yield"]
            step_instances = engine.list_instances(key="sop_step", status="completed", limit=1)[1]
            engine.db.dispose()
    finally:
        identity._hasher = hasher
    result: dict[str, Any] = {"steps": steps, "completed_step_instances": step_instances,
                              "batch_waiting_for_yield": waiting_for_yield, "batch_status": batch.status}
    for probe in probes:
        result[f"step_{probe}_ms"] = around(timings, probe)
    result[f"ratio_{probes[-1]}_to_{probes[0]}"] = round(result[f"step_{probes[-1]}_ms"]
                                                         / result[f"step_{probes[0]}_ms"], 2)
    return result


if __name__ == "__main__":  # python -m bench.sop [steps]
    import json
    import sys

    n = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
    print(json.dumps(sop_step_costs(n, (10, n)), indent=1))
