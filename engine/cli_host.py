"""The ``gmpflow`` command is a host: beside the engine's own commands (``engine/cli.py``) it offers the
commands other packages contribute, found when asked for, so that the engine imports none of those packages.

Two ways in, one group (``CommandHost``):

- a process pack (``engine.packs``) adds commands through its hook ``gmpflow_cli_commands``: a pack is a
  pluggy plugin with many hooks, and its commands are one more (the GMP pack's ``gmpflow genealogy``);
- any other package names a ``click`` command in the entry point group ``gmpflow.commands``
  (``<command name> = "<module>:<attribute>"``). gmpflow's own are ``gmpflow run`` (``webapp.cli:run``: the
  web app, a worker and the demo's simulator in one process) and ``gmpflow bench`` (``bench.cli:bench``).
  They are no packs on purpose: every engine loads its packs (schema, services, operations), and a worker or
  a migration has no business importing Flask or the benchmark harness.

gmpflow's own contributed commands are also listed in ``BUILTINS`` and looked up by name, skipped when their
package is absent (an installation without the web app still has every engine command): a source checkout,
or an editable install whose metadata predates a command, has them too. The entry point group serves a site's
packages (and the wheel, where both name the same thing). When names collide the engine's own command wins,
then a pack's, then a built-in's, then an entry point's.
"""

from __future__ import annotations

from collections.abc import Mapping
from importlib.metadata import EntryPoint, entry_points

import click

from engine.by_name import load_by_name

BUILTINS: Mapping[str, str] = {"run": "webapp.cli:run", "bench": "bench.cli:bench"}
ENTRY_POINT_GROUP = "gmpflow.commands"


def _command(found: object, target: str) -> click.Command:
    if not isinstance(found, click.Command):
        raise TypeError(f"{target} names no click command (entry point group {ENTRY_POINT_GROUP}).")
    return found


class CommandHost(click.Group):
    """A ``click`` group offering, after its own commands, the packs' and the contributed ones. A contributed
    command's module is imported only when that command is asked for (or the list of all, for ``--help``).
    ``builtins`` and ``load_entry_points`` say where contributed commands come from (tests give their own)."""

    builtins: Mapping[str, str] = BUILTINS
    load_entry_points: bool = True

    def _pack_commands(self) -> dict[str, click.Command]:
        from engine.packs import default_packs

        return {c.name or "": c for commands in default_packs().hook.gmpflow_cli_commands() for c in commands}

    def _entry_points(self) -> dict[str, EntryPoint]:
        if not self.load_entry_points:
            return {}
        return {ep.name: ep for ep in entry_points(group=ENTRY_POINT_GROUP)}

    def _contributed(self, name: str) -> click.Command | None:
        target = self.builtins.get(name)
        if target is not None and (found := load_by_name(target)) is not None:
            return _command(found, target)
        entry_point = self._entry_points().get(name)
        if entry_point is None or entry_point.value == target:  # none, or the built-in that is absent
            return None
        return _command(entry_point.load(), entry_point.value)

    def list_commands(self, ctx: click.Context) -> list[str]:
        # a built-in whose package is absent is listed here and left out of --help (its command is None)
        return sorted({*super().list_commands(ctx), *self._pack_commands(), *self.builtins,
                       *self._entry_points()})

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        return (super().get_command(ctx, cmd_name) or self._pack_commands().get(cmd_name)
                or self._contributed(cmd_name))
