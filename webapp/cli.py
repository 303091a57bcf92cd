"""The web app's command of the ``gmpflow`` CLI, ``gmpflow run`` (entry point group ``gmpflow.commands``, and
a built-in of ``engine.cli_host``): the demo's composition root, the web app, the scheduler, a worker and the
ERP/MES simulator in one process."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, cast

import click

from engine.by_name import load_by_name
from engine.cli_support import command_engine

# The demo's simulator, looked up by name the way the engine finds its built-in packs: the web app imports no
# connector (tests/test_layout.py), and an installation without the connectors package runs without it.
SIMULATOR = "connectors.simulator.demo:start_alongside"


@click.command()
@click.option("--host", default="127.0.0.1")
@click.option("--port", default=5000, type=int)
def run(host: str, port: int) -> None:
    """The web app, the scheduler and a worker in one process; and, unless GMPFLOW_SIMULATOR=off, the ERP/MES
    simulator on 127.0.0.1 for every connector the environment does not configure (the demo)."""
    from engine.worker import start_background_worker
    from webapp import create_app
    from webapp.server import serve

    start_alongside = cast("Callable[[], Any] | None", load_by_name(SIMULATOR))
    # before the app reads the environment into its connector registry
    simulator = start_alongside() if start_alongside is not None else None
    if simulator is not None:
        click.echo(f"ERP/MES simulator on {simulator.url} (GMPFLOW_SIMULATOR=off turns it off)")
    app = create_app(engine=command_engine())
    app.extensions["gmpflow"].record_start()
    scheduler = start_background_worker(app.extensions["gmpflow"])
    try:
        serve(app, host, port, threads=app.extensions["gmpflow"].config.web_threads)
    finally:
        scheduler.shutdown(wait=False)
        if simulator is not None:
            simulator.stop()
