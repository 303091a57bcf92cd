"""gmpflow's GMP content as a process pack (``engine.packs``): change control, order release, SOP execution
and the batch record, material lots and genealogy, the equipment logbook. It registers through the same hooks
a site's own pack uses (the engine loads it by name, ``engine.packs.BUILTINS``, and it is declared in the
entry point group ``gmpflow.packs``)."""

from __future__ import annotations

from importlib.resources import files
from pathlib import Path
from typing import TYPE_CHECKING, Any

from engine.packs import DemoStep, PackMigrations, SealedTable, hookimpl
from gmp import (
    batch,
    batch_record,
    demo,
    equipment_log,
    governance,
    lots,
    orders,
    product_lots,
    record_roles,
    step_entry,
    tables,
    task_context,
)
from gmp.services import GmpServices

if TYPE_CHECKING:
    import click
    from sqlalchemy import Table

    from engine.definitions.lint import ModelCheck
    from engine.operations import Operation
    from engine.services import Gmpflow
    from engine.signed_records import RecordSource

PROCESSES = Path(str(files("gmp") / "processes"))  # package data (a wheel has it)
MIGRATIONS = Path(str(files("gmp") / "migrations"))  # the tables' Alembic revisions, branch 'gmp'


@hookimpl
def gmpflow_pack_operations(engine: Gmpflow) -> list[Operation]:
    return [
        *governance.operations(engine),     # change control: opens changes, makes versions effective
        *orders.operations(engine),         # order release: master data, signatures
        *batch.operations(engine),          # SOP execution and batch release: master data, step instances
        *lots.operations(engine),           # the disposition model sets a lot's status
        *equipment_log.operations(engine),  # cleanings; a batch's end releases its equipment
        *step_entry.operations(engine),     # the point of use: a step's entry checked before its signature
        *product_lots.operations(engine),   # the lot a batch produces takes the batch's disposition
    ]


@hookimpl
def gmpflow_record_sources(engine: Gmpflow) -> dict[str, RecordSource]:
    return {"batch": lambda session, key: batch_record.facts(session, key, engine.runtime)}


@hookimpl
def gmpflow_tables() -> list[Table]:
    return list(tables.TABLES)


@hookimpl
def gmpflow_migrations() -> PackMigrations:
    return PackMigrations("gmp", MIGRATIONS)


@hookimpl
def gmpflow_sealed_tables() -> list[SealedTable]:
    return [SealedTable("equipment_log", equipment_log.verify_rows)]


@hookimpl
def gmpflow_model_checks() -> list[ModelCheck]:
    return [record_roles.check]


@hookimpl
def gmpflow_process_folders() -> list[Path]:
    return sorted(p for p in PROCESSES.iterdir() if p.is_dir() and any(p.glob("*.bpmn")))


@hookimpl
def gmpflow_demo_steps() -> list[DemoStep]:
    return demo.steps()


@hookimpl
def gmpflow_services(engine: Gmpflow) -> GmpServices:
    return GmpServices(engine)


@hookimpl
def gmpflow_task_context(engine: Gmpflow, instance: Any, variables: dict[str, Any]) -> dict[str, Any] | None:
    return task_context.build(engine, instance, variables)


@hookimpl
def gmpflow_cli_commands() -> list[click.Command]:
    from gmp.cli import genealogy

    return [genealogy]
