"""Process packs: domain content (models, operations bound to the engine, record kinds, demo data, services)
that plugs into the generic engine through pluggy, the way connectors do (``connectors.hookspecs``).

gmpflow's own GMP content is the built-in pack ``gmp.pack`` (listed in ``BUILTINS``, loaded by name: the
engine imports nothing of it); a site's pack is a module or object with ``@hookimpl`` functions declared in
the entry point group ``gmpflow.packs`` (see ``gmp/README.md``). Every hook is optional.

Hooks:

``gmpflow_pack_operations(engine)``
    Operations that read or change the engine's own governed state, bound to ``engine`` (a ``Gmpflow``);
    added to a copy of the connector registry (a connector cannot take their names).
``gmpflow_record_sources(engine)``
    Record kinds a signature can cover (model property ``signature.record = "<kind>:<key expression>"``):
    kind → ``RecordSource`` (``engine.signed_records``).
``gmpflow_tables()``
    The pack's own tables (``sqlalchemy.Table``), declared on the engine's ``engine.store.models.Base``:
    ``schema()`` answers the metadata holding them and the engine's, the whole schema the migrations build.
``gmpflow_migrations()``
    The pack's own Alembic revisions, which create its tables (``PackMigrations``: a branch and its folder);
    ``engine.store.migrate.upgrade`` runs them after the engine's.
``gmpflow_sealed_tables()``
    The pack's append-only sealed tables, rechecked by ``gmpflow audit verify`` (``engine.sealed``).
``gmpflow_process_folders()``
    The folders of the processes ``gmpflow init`` deploys (one process, with its DMN and forms, per folder).
``gmpflow_demo_steps()``
    What ``gmpflow init --demo`` loads after the demo users and master data, in order.
``gmpflow_services(engine)``
    The pack's services, an object bound to ``engine``; callers ask for it by its class:
    ``engine.pack(GmpServices).create_lot(...)`` (``Gmpflow.pack``; PackMissing when no pack offers it).
``gmpflow_task_context(engine, instance, variables)``
    What the task page shows beside the form for a task of ``instance`` (first answer that is not None).
``gmpflow_cli_commands()``
    ``click`` commands added to the ``gmpflow`` command.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import pluggy
from sqlalchemy import MetaData, Table
from sqlalchemy.orm import Session

from engine.by_name import import_if_present
from engine.store.models import Base

if TYPE_CHECKING:
    import click

    from engine.audit import Actor
    from engine.definitions.lint import ModelCheck
    from engine.operations import Operation
    from engine.services import Gmpflow
    from engine.signed_records import RecordSource

PROJECT = "gmpflow.packs"
hookspec = pluggy.HookspecMarker(PROJECT)
hookimpl = pluggy.HookimplMarker(PROJECT)

BUILTINS = ("gmp.pack",)  # gmpflow's GMP content: a lookup by name, skipped when the package is absent
ENTRY_POINT_GROUP = "gmpflow.packs"


@dataclass(frozen=True)
class SealedTable:
    """An append-only table whose rows carry a MAC: ``verify(session)`` answers (rows checked, the id of the
    first row that does not match its MAC, or None)."""
    table: str
    verify: Callable[[Session], tuple[int, str | None]]


@dataclass(frozen=True)
class PackMigrations:
    """A pack's Alembic revisions: the files in ``folder``, the branch ``branch`` (its first revision says
    ``down_revision = None`` and ``branch_labels = (branch,)``; revision ids unique across every pack, e.g.
    ``<branch>_0001``)."""
    branch: str
    folder: Path


@dataclass(frozen=True)
class DemoStep:
    """One step of ``gmpflow init --demo``: ``load(engine, actor)`` answers a line per thing it added."""
    name: str
    load: Callable[[Gmpflow, Actor], list[str]]


class _Specs:
    @hookspec
    def gmpflow_pack_operations(self, engine: Gmpflow) -> list[Operation]:  # type: ignore[empty-body]
        """Operations bound to the engine."""

    @hookspec
    def gmpflow_record_sources(self, engine: Gmpflow) -> dict[str, RecordSource]:  # type: ignore[empty-body]
        """Record kinds a signature can cover."""

    @hookspec
    def gmpflow_tables(self) -> list[Table]:  # type: ignore[empty-body]
        """The pack's tables, on the engine's metadata."""

    @hookspec
    def gmpflow_migrations(self) -> PackMigrations:  # type: ignore[empty-body]
        """The pack's migrations, run after the engine's."""

    @hookspec
    def gmpflow_sealed_tables(self) -> list[SealedTable]:  # type: ignore[empty-body]
        """Append-only sealed tables to verify."""

    @hookspec
    def gmpflow_model_checks(self) -> list[ModelCheck]:  # type: ignore[empty-body]
        """Lint rules for the pack's model properties, run by lint and on every deploy."""

    @hookspec
    def gmpflow_process_folders(self) -> list[Path]:  # type: ignore[empty-body]
        """Process folders ``gmpflow init`` deploys."""

    @hookspec
    def gmpflow_demo_steps(self) -> list[DemoStep]:  # type: ignore[empty-body]
        """Demo data ``gmpflow init --demo`` loads."""

    @hookspec
    def gmpflow_services(self, engine: Gmpflow) -> object:
        """The pack's services, found by their class (``Gmpflow.pack``)."""

    @hookspec(firstresult=True)
    def gmpflow_task_context(self, engine: Gmpflow, instance: Any,
                             variables: dict[str, Any]) -> dict[str, Any] | None:
        """What a task of ``instance`` is about, for the task page."""

    @hookspec
    def gmpflow_cli_commands(self) -> list[click.Command]:  # type: ignore[empty-body]
        """Commands of the ``gmpflow`` CLI."""


def pack_manager(*, builtins: tuple[str, ...] = BUILTINS, load_entry_points: bool = True
                 ) -> pluggy.PluginManager:
    """A plugin manager holding the built-in packs that are installed and every pack of the entry point
    group (a pack both listed and declared is registered once)."""
    pm = pluggy.PluginManager(PROJECT)
    pm.add_hookspecs(_Specs)
    for name in builtins:
        module = import_if_present(name)  # a pack that is there but broken raises
        if module is not None:  # else the engine alone, without gmpflow's GMP content
            pm.register(module, name=name)
    if load_entry_points:
        from importlib.metadata import entry_points

        for entry_point in entry_points(group=ENTRY_POINT_GROUP):
            if entry_point.value not in builtins and pm.get_plugin(entry_point.name) is None:
                pm.register(entry_point.load(), name=entry_point.name)
    return pm


@functools.cache
def default_packs() -> pluggy.PluginManager:
    """The installation's packs, found once per process (installed packages do not change while it runs)."""
    return pack_manager()


def pack_migrations(pm: pluggy.PluginManager) -> list[PackMigrations]:
    """Every pack's migrations, in the packs' registration order (pluggy calls the last registered first)."""
    found = list(reversed(pm.hook.gmpflow_migrations()))
    branches = [m.branch for m in found]
    if "engine" in branches or len(set(branches)) != len(branches):
        raise ValueError(f"Each pack's migrations need a branch of their own, not 'engine': {branches}.")
    return found


def schema(pm: pluggy.PluginManager | None = None) -> MetaData:
    """The whole schema: the engine's tables and every pack's (``gmpflow_tables``), on one metadata. A pack
    table on any other metadata is refused: the migrations and the checks of the schema would not see it."""
    for tables in (pm or default_packs()).hook.gmpflow_tables():
        for table in tables:
            if table.metadata is not Base.metadata:
                raise ValueError(f"The pack table {table.name} is not declared on engine.store.models.Base.")
    return Base.metadata
