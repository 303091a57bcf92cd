"""What every ``gmpflow`` command shares, wherever it is declared (``engine/cli.py``, a pack's ``gmp/cli.py``,
the web app's ``webapp/cli.py``, the harness's ``bench/cli.py``): the engine on the installation's
configuration, closed with the command, and a refusal printed the one way the CLI contract gives."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING, NoReturn

import click

from engine.errors import GmpflowError

if TYPE_CHECKING:
    from engine.services import Gmpflow


def command_engine() -> Gmpflow:
    """The engine of this command, on the configuration the environment gives (``engine.config.Config``: a
    bad setting exits 1 naming it); its connections close with the command."""
    from engine.config import Config
    from engine.operations import configured_registry
    from engine.services import Gmpflow

    try:
        config = Config.from_environ()
    except GmpflowError as exc:
        fail(exc)
    engine = Gmpflow(registry=configured_registry(), config=config)
    context = click.get_current_context(silent=True)
    if context is not None:  # its connections close with the command (tests run many in one process)
        context.call_on_close(engine.db.dispose)
    return engine


def fail(exc: GmpflowError) -> NoReturn:
    """``error [code]: message`` on standard error, a line per problem the error carries, exit 1."""
    click.echo(f"error [{exc.code}]: {exc}", err=True)
    for problem in exc.context.get("problems", []) or []:
        where = ":".join(str(problem[k]) for k in ("file", "line") if problem.get(k))
        element = f" [{problem['element_id']}]" if problem.get("element_id") else ""
        click.echo(f"  {where}{element}: {problem['message']} ({problem['code']})", err=True)
    sys.exit(1)
