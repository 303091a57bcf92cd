"""The ``gmpflow`` command. Each command builds the installation's configuration once from the environment
(``engine.config.Config``: ``GMPFLOW_DATABASE_URL`` and the rest) and hands it to the engine it makes.

These are the engine's own commands; other packages add theirs to the same group (``engine.cli_host``):
``gmpflow run`` is the web app's (``webapp/cli.py``), ``gmpflow bench`` the harness's (``bench/cli.py``),
``gmpflow genealogy`` the GMP pack's (``gmp/cli.py``)."""

from __future__ import annotations

import getpass
import json
import sys
from pathlib import Path
from typing import Any

import click

from engine.audit import Actor
from engine.cli_host import CommandHost
from engine.cli_support import command_engine as _engine  # a module global, so that tests can replace it
from engine.cli_support import fail as _fail
from engine.definitions.bundle import read_bundle
from engine.errors import GmpflowError
from engine.identity import Principal


def _actor() -> Actor:
    user = getpass.getuser()
    return Actor(f"cli:{user}", f"{user} (command line)")


def _cli_principal() -> Principal:
    """Who starts a process from the command line: the installation's administrator (who has the database
    anyway), checked against the model like anyone else (``start.roles``, declared start variables)."""
    actor = _actor()
    return Principal(actor.id, actor.name, frozenset({"admin"}))


@click.group(cls=CommandHost)
def main() -> None:
    """gmpflow: a BPMN engine for regulated manufacturing."""


@main.command()
@click.option("--demo", is_flag=True, help="Also add demo users and data.")
def init(demo: bool) -> None:
    """Create or upgrade the database and load the bundled models."""
    from engine import bootstrap

    engine = _engine()
    try:
        engine.init_database()
        click.echo(f"audit key: {engine.db.audit_key.path} (back it up apart from the database; without it "
                   "the trail cannot be verified)")
        for dep, created in bootstrap.load_bundled_models(engine, _actor()):
            click.echo(f"{dep.key} v{dep.version} {dep.status}{'' if created else ' (unchanged)'}")
        if demo:
            for username, password, roles in bootstrap.add_demo_users(engine, _actor()):
                click.echo(f"demo user {username} / {password} ({', '.join(roles)})")
            for version in bootstrap.load_demo_masterdata(engine, _actor()):
                click.echo(f"demo master data {version.record.type_name} {version.record.key} "
                           f"v{version.number} {version.status}")
            for line in bootstrap.load_demo_steps(engine, _actor()):  # the packs' demo data (lots, ...)
                click.echo(line)
    except GmpflowError as exc:
        _fail(exc)


def _decisions_only(paths: tuple[str, ...]) -> bool:
    """Whether the bundle holds DMN files and no BPMN: a decision deployed alone."""
    bundle = read_bundle(list(paths))
    return bool(bundle.of_kind("dmn")) and not bundle.of_kind("bpmn")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--process", default=None, help="the process to deploy when the files hold several top-level "
              "executable processes (pools of one collaboration)")
def deploy(paths: tuple[str, ...], process: str | None) -> None:
    """Deploy one process bundle (.bpmn/.dmn/.form files or a folder); prints key, version and status."""
    engine = _engine()
    try:
        dep, created = engine.deploy(_actor(), list(paths), process=process)
    except GmpflowError as exc:
        _fail(exc)
    click.echo(f"{dep.key} {dep.version} {dep.status}{'' if created else ' (unchanged)'}")
    _echo_notices(engine, paths)
    if _decisions_only(paths):  # engine.dmn: a decision service, no instances
        click.echo(f"a decision: business rule tasks call it by its key, {dep.key}")
        return
    click.echo(f"who may start: {', '.join(engine.start_roles(dep)) or 'nobody (message or timer start)'}")


def _echo_notices(engine: Any, paths: tuple[str, ...]) -> None:
    """What the files carry that gmpflow reads past (``Gmpflow.lint_notices``), one line each."""
    for notice in engine.lint_notices(read_bundle(list(paths))):
        click.echo(f"notice: {notice} ({notice.code})")


@main.command()
@click.argument("paths", nargs=-1, required=True, type=click.Path(exists=True))
@click.option("--process", default=None, help="the process to check when the files hold several top-level "
              "executable processes")
def lint(paths: tuple[str, ...], process: str | None) -> None:
    """Check a bundle without storing it; exit 1 on any problem."""
    engine = _engine()
    try:
        problems = engine.lint(list(paths), process)
        for p in problems:
            click.echo(f"{p} ({p.code})")
        _echo_notices(engine, paths)
        if problems:
            sys.exit(1)
        key, roles = engine.who_may_start(list(paths), process)
    except GmpflowError as exc:
        _fail(exc)
    if _decisions_only(paths):
        click.echo(f"a decision: business rule tasks call it by its key, {key}")
    else:
        click.echo(f"who may start {key}: {', '.join(roles) or 'nobody (message or timer start)'}")
    click.echo("ok")


@main.command()
@click.argument("key")
@click.option("--business-key", default=None)
@click.option("--variables", default="{}", help="Variables as a JSON object.")
def start(key: str, business_key: str | None, variables: str) -> None:
    """Start an instance of the latest active version of KEY."""
    try:
        values = json.loads(variables)
        instance = _engine().start_instance(_cli_principal(), key, business_key, values)
    except json.JSONDecodeError as exc:
        click.echo(f"error [bad_json]: --variables is not JSON: {exc}", err=True)
        sys.exit(1)
    except GmpflowError as exc:
        _fail(exc)
    click.echo(json.dumps({"id": instance.id, "status": instance.status,
                           "business_key": instance.business_key}))


@main.group()
def users() -> None:
    """Manage users."""


@users.command("add")
@click.argument("username")
@click.option("--name", "full_name", required=True, help="Printed name, as it appears on signatures.")
@click.option("--role", "roles", multiple=True, required=True)
@click.option("--password-stdin", is_flag=True, required=True, help="Read the password from standard input.")
def users_add(username: str, full_name: str, roles: tuple[str, ...], password_stdin: bool) -> None:
    password = sys.stdin.readline().rstrip("\n")
    try:
        _engine().add_user(_actor(), username, full_name, password, list(roles))
    except GmpflowError as exc:
        _fail(exc)
    click.echo(f"user {username} added with roles {', '.join(roles)}")


@main.group()
def roles() -> None:
    """Manage roles (what lanes, start.roles and message.senders name)."""


@roles.command("add")
@click.argument("name")
@click.option("--description", required=True, help="What holders of the role do.")
@click.option("--reason", default="added with gmpflow roles add", show_default=True,
              help="Why (recorded in the audit trail).")
def roles_add(name: str, description: str, reason: str) -> None:
    try:
        _engine().add_role(_actor(), name, description, reason)
    except GmpflowError as exc:
        _fail(exc)
    click.echo(f"role {name} added")


@main.group()
def masterdata() -> None:
    """Master data: record types, records, versions."""


@masterdata.command("types")
def masterdata_types() -> None:
    """The record types (latest version of each) and their schema hashes."""
    for row in _engine().masterdata.types():
        click.echo(f"{row.name}\tv{row.version}\t{row.schema_hash[:12]}\t{row.title}")


@masterdata.command("records")
@click.argument("type_name", metavar="TYPE")
def masterdata_records(type_name: str) -> None:
    """The records of TYPE: key, title, and each version's number and status."""
    try:
        rows = _engine().masterdata.records(type_name)
    except GmpflowError as exc:
        _fail(exc)
    for record, versions in rows:
        click.echo(f"{record.key}\t{record.title}\t" + ", ".join(f"v{v.number} {v.status}" for v in versions))


@masterdata.command("show")
@click.argument("type_name", metavar="TYPE")
@click.argument("key")
def masterdata_show(type_name: str, key: str) -> None:
    """A record with all its versions, as JSON."""
    try:
        record, versions = _engine().masterdata.record(type_name, key)
    except GmpflowError as exc:
        _fail(exc)
    click.echo(json.dumps({"type": record.type_name, "key": record.key, "title": record.title, "versions": [
        {"number": v.number, "status": v.status, "effective_from": v.effective_from,
         "effective_until": v.effective_until, "content_hash": v.content_hash, "data": v.data}
        for v in versions]}, indent=2, default=lambda v: v.isoformat()))  # datetimes


@masterdata.command("diff")
@click.argument("type_name", metavar="TYPE")
@click.argument("key")
@click.argument("v1", type=int)
@click.argument("v2", type=int)
def masterdata_diff(type_name: str, key: str, v1: int, v2: int) -> None:
    """The changes from version V1 to V2, one JSON pointer per line."""
    try:
        changes = _engine().masterdata.diff(type_name, key, v1, v2)
    except GmpflowError as exc:
        _fail(exc)
    for change in changes:
        click.echo(f"{change['path']}: {json.dumps(change['before'])} -> {json.dumps(change['after'])}")


@masterdata.command("import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
def masterdata_import(file: str) -> None:
    """Import records from a JSON file (a list of {type, key, title, data}) as drafts; all or nothing."""
    try:
        items = json.loads(Path(file).read_text(encoding="utf-8"))
    except (ValueError, UnicodeDecodeError) as exc:
        click.echo(f"error [bad_json]: {file} is not JSON: {exc}", err=True)
        sys.exit(1)
    try:
        versions = _engine().masterdata.import_records(_actor(), items)
    except GmpflowError as exc:
        click.echo(f"error [{exc.code}]: {exc}", err=True)
        for where, message in (getattr(exc, "errors", None) or {}).items():
            click.echo(f"  {where}: {message}", err=True)
        sys.exit(1)
    for version in versions:
        click.echo(f"{version.record.type_name} {version.record.key} v{version.number} {version.status}")


@main.group()
def audit() -> None:
    """The audit trail."""


@audit.command("verify")
def audit_verify() -> None:
    """Recompute the keyed chain, check it against the anchor file, every signature's record hash and binding
    and every sealed row's MAC; exit 1 naming the first broken sequence number, signature or row."""
    report = _engine().verify_audit()
    if report.ok:
        click.echo(f"ok: {report.checked} events and signatures verified")
        return
    if report.table is not None:
        click.echo(f"broken: {report.table} {report.row_id}: {report.reason}", err=True)
    elif report.first_broken is None:
        click.echo(f"broken: {report.reason}", err=True)
    else:
        click.echo(f"broken at sequence {report.first_broken}: {report.reason}", err=True)
    sys.exit(1)


@audit.command("anchor")
def audit_anchor() -> None:
    """Append a checkpoint of the chain's head (sequence, MAC, time) to the anchor file outside the
    database (GMPFLOW_AUDIT_ANCHOR_FILE, default audit-anchors.jsonl next to the audit key)."""
    engine = _engine()
    try:
        line = engine.anchor_audit(_actor())
    except GmpflowError as exc:
        _fail(exc)
    assert line is not None
    click.echo(f"anchor {line['n']}: event {line['seq']} {line['mac']} at {line['at']} "
               f"-> {engine.anchors.path}")


@main.command("backup")
@click.argument("target", type=click.Path(dir_okay=False))
def backup_command(target: str) -> None:
    """Write an online backup of the SQLite database to TARGET."""
    from engine.backup import backup

    try:
        path = backup(_engine().db, Path(target))
    except GmpflowError as exc:
        _fail(exc)
    click.echo(f"backup written to {path}")


@main.command("restore")
@click.argument("source", type=click.Path(exists=True, dir_okay=False))
def restore_command(source: str) -> None:
    """Replace the SQLite database with the backup SOURCE (stop the app and workers first)."""
    from engine.backup import restore

    try:
        report = restore(_engine().db, Path(source))
    except GmpflowError as exc:
        _fail(exc)
    click.echo(f"restored from {source}; audit trail verified: {report.checked} events")


@main.command()
@click.option("--interval", default=1.0, type=float,
              help="Seconds between safety-net polls (jobs start when a commit makes them due).")
def worker(interval: float) -> None:
    """Run jobs only: timers, connector calls, retries, message deliveries."""
    from engine.worker import run_blocking_worker

    run_blocking_worker(_engine(), interval)


@main.group()
def connectors() -> None:
    """The connector operations service tasks may call (configured from the environment)."""


@connectors.command("list")
def connectors_list() -> None:
    """Each registered operation, whether it is idempotent, and what it does."""
    from engine.operations import configured_registry

    for op in configured_registry().all():
        click.echo(f"{op.name:32} {'idempotent' if op.idempotent else '          '}  {op.description}")


@connectors.command("templates")
def connectors_templates() -> None:
    """Element templates (JSON) for the browser modeler: one per operation, with its parameters."""
    from engine.operations import configured_registry

    click.echo(json.dumps(configured_registry().element_templates(), indent=2))


if __name__ == "__main__":
    main()
