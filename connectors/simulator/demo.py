"""The simulator alongside ``gmpflow run``, so README's demo runs end to end with nothing set by hand.

Unless ``GMPFLOW_SIMULATOR=off``, ``gmpflow run`` starts the ERP/MES simulator on 127.0.0.1 (port
``GMPFLOW_SIMULATOR_PORT``, default 8071; a free one when that is taken), with the demo production orders of
the demo product, and points ``erp.*`` and ``mes.*`` at it — but only where the environment names no ERP or
MES of its own (a configured Tryton or MES always wins)."""

from __future__ import annotations

import os
from collections.abc import MutableMapping
from datetime import date, timedelta
from typing import Any

from connectors.simulator.app import Counterpart
from connectors.simulator.server import RunningSimulator, serve

DEFAULT_PORT = 8071


def demo_orders(today: date) -> list[dict[str, Any]]:
    """Production orders of the demo product (``masterdata/demo``), planned from ``today``: waiting in the
    ERP until a planner announces them (message ``order_ready``)."""
    return [{"number": f"MO-DEMO-{1001 + n}", "product": "PRD-PARA-500", "quantity": 1000, "unit": "pcs",
             "product_name": "Paracetamol 500 mg tablets",
             "planned_start_date": (today + timedelta(days=1 + n)).isoformat(),
             "planned_date": (today + timedelta(days=2 + n)).isoformat(),
             "inputs": [{"product": "MAT-PARACETAMOL", "quantity": 0.5, "unit": "kg"},
                        {"product": "MAT-LACTOSE", "quantity": 0.15, "unit": "kg"}]}
            for n in range(3)]


def wanted(environ: MutableMapping[str, str]) -> bool:
    return environ.get("GMPFLOW_SIMULATOR", "on").strip().lower() not in ("off", "0", "false", "no")


def start_alongside(environ: MutableMapping[str, str] | None = None,
                    today: date | None = None) -> RunningSimulator | None:
    """Start the simulator with the demo orders and point the unconfigured connectors at it (in ``environ``,
    default the process environment, before the app builds its registry); None when turned off."""
    environ = os.environ if environ is None else environ
    if not wanted(environ):
        return None
    counterpart = Counterpart()
    for order in demo_orders(today or date.today()):
        counterpart.add_order(**order)
    port = int(environ.get("GMPFLOW_SIMULATOR_PORT") or DEFAULT_PORT)
    try:
        running = serve(counterpart, host="127.0.0.1", port=port)
    except OSError:  # the port is taken (another gmpflow run): any free port does
        running = serve(counterpart, host="127.0.0.1", port=0)
    if not environ.get("GMPFLOW_ERP") and not environ.get("GMPFLOW_TRYTON_URL"):
        environ["GMPFLOW_ERP"] = "simulator"
    if environ.get("GMPFLOW_ERP") == "simulator":
        environ.setdefault("GMPFLOW_ERP_URL", running.url)
    environ.setdefault("GMPFLOW_MES_URL", running.url)
    return running
