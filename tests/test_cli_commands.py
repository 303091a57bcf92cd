"""The ``gmpflow`` command as a host (``engine.cli_host``): the engine's own commands, the packs', and those
other packages contribute — gmpflow's ``run`` (the web app's) and ``bench`` (the harness's), or a site's, by
built-in name or by the entry point group ``gmpflow.commands``. A contributed command whose package is absent
is left out and every other command works."""

from __future__ import annotations

import re
import sys
from collections.abc import Iterator
from dataclasses import replace
from importlib.metadata import distributions
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from engine.by_name import load_by_name
from engine.cli import main
from engine.packs import pack_manager
from engine.services import Gmpflow

SITE_COMMAND = '''
import click


@click.command()
@click.option("--to", default="the site")
def hello(to):
    """Greets from a site's own package."""
    click.echo(f"hello from {to}")


not_a_command = "hello"
'''


@pytest.fixture
def site(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A folder on the import path holding a site's module ``site_hello`` (its command ``hello``); a test
    declares entry points with ``declare``. The CLI reads no built-in, and entry points as installed."""
    (tmp_path / "site_hello.py").write_text(SITE_COMMAND)
    (tmp_path / "site_broken.py").write_text("import a_dependency_that_is_not_installed\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setattr(main, "builtins", {})
    monkeypatch.setattr(main, "load_entry_points", True)
    yield tmp_path
    for name in ("site_hello", "site_broken"):
        sys.modules.pop(name, None)


def declare(folder: Path, **commands: str) -> None:
    """An installed distribution's metadata declaring ``commands`` in the group ``gmpflow.commands``, as
    ``pip install`` of a site's package would write it."""
    info = folder / "site_commands-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: site-commands\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[gmpflow.commands]\n" + "".join(f"{name} = {target}\n" for name, target in commands.items()))


def listed(help_text: str) -> set[str]:
    """The command names ``--help`` lists."""
    commands = help_text.split("Commands:", 1)[1]
    return {line.split()[0] for line in commands.splitlines() if line.startswith("  ") and line.split()}


def test_help_lists_run_and_bench_beside_the_engines_and_the_packs_commands() -> None:
    result = CliRunner().invoke(main, ["--help"])
    assert result.exit_code == 0, result.output
    assert {"run", "bench", "genealogy", "lint", "worker", "init"} <= listed(result.output)
    assert "run" not in main.commands and "bench" not in main.commands  # contributed, not the engine's own


@pytest.mark.parametrize(("command", "options"), [
    ("run", ["--host", "--port"]),
    ("bench", ["--json", "--instances", "--audit-events", "--load", "--postgres"]),
])
def test_the_contributed_commands_keep_their_options(command: str, options: list[str]) -> None:
    result = CliRunner().invoke(main, [command, "--help"])
    assert result.exit_code == 0, result.output
    assert all(option in result.output for option in options)


def test_a_sites_command_declared_as_an_entry_point_is_offered(site: Path) -> None:
    declare(site, hello="site_hello:hello")
    runner = CliRunner()
    assert "hello" in listed(runner.invoke(main, ["--help"]).output)
    result = runner.invoke(main, ["hello", "--to", "QA"])
    assert (result.exit_code, result.output) == (0, "hello from QA\n")


def test_a_built_in_command_is_looked_up_by_name_without_any_metadata(
        site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "builtins", {"hello": "site_hello:hello"})
    monkeypatch.setattr(main, "load_entry_points", False)
    result = CliRunner().invoke(main, ["hello"])
    assert (result.exit_code, result.output) == (0, "hello from the site\n")


def test_without_the_web_app_the_engine_cli_works_and_offers_no_run(
        site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "builtins", {"run": "site_webapp_not_installed.cli:run",
                                           "bench": "bench.cli:bench"})
    declare(site, run="site_webapp_not_installed.cli:run")  # the wheel's metadata names it too
    # only that metadata: this checkout's own (pip install -e) names the web app that is installed here
    monkeypatch.setattr("engine.cli_host.entry_points", lambda group: [
        ep for dist in distributions(path=[str(site)]) for ep in dist.entry_points if ep.group == group])
    runner = CliRunner()
    help_result = runner.invoke(main, ["--help"])
    assert help_result.exit_code == 0, help_result.output
    assert "run" not in listed(help_result.output) and {"bench", "lint"} <= listed(help_result.output)
    listing = runner.invoke(main, ["connectors", "list"])
    assert listing.exit_code == 0 and "echo" in listing.output
    missing = runner.invoke(main, ["run"])
    assert missing.exit_code == 2 and "No such command 'run'" in missing.output


def test_a_contributed_command_that_is_installed_but_broken_is_said_not_hidden(
        site: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(main, "builtins", {"broken": "site_broken:hello"})
    result = CliRunner().invoke(main, ["broken"])
    assert isinstance(result.exception, ModuleNotFoundError)
    assert result.exception.name == "a_dependency_that_is_not_installed"


def test_an_entry_point_that_names_no_command_is_refused(site: Path) -> None:
    declare(site, hello="site_hello:not_a_command")
    result = CliRunner().invoke(main, ["hello"])
    assert isinstance(result.exception, TypeError) and "names no click command" in str(result.exception)


def test_the_engines_own_command_wins_over_a_contributed_one_of_the_same_name(site: Path) -> None:
    declare(site, lint="site_hello:hello")
    result = CliRunner().invoke(main, ["lint", "--help"])
    assert result.exit_code == 0 and "Check a bundle without storing it" in result.output


def test_run_with_a_bad_setting_stops_at_once_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GMPFLOW_SIMULATOR", "off")
    monkeypatch.setenv("GMPFLOW_LOCKOUT_ATTEMPTS", "many")
    result = CliRunner().invoke(main, ["run"])
    assert result.exit_code == 1
    assert "error [bad_setting]: GMPFLOW_LOCKOUT_ATTEMPTS must be" in result.output


class Started:
    """What ``gmpflow run`` started, faked: the server it was asked to serve on, the worker, the simulator."""

    def __init__(self) -> None:
        self.served: tuple[str, int] | None = None
        self.worker_stopped = self.simulator_stopped = False
        self.url = "http://127.0.0.1:8071"

    def shutdown(self, wait: bool) -> None:
        self.worker_stopped = True

    def stop(self) -> None:
        self.simulator_stopped = True


def test_run_serves_the_app_with_the_worker_and_the_simulator_and_stops_them_after(
        engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> None:
    started = Started()

    def serve(app: Any, host: str, port: int, threads: int) -> None:
        started.served = (host, port, threads)

    monkeypatch.setattr("webapp.cli.command_engine", lambda: engine)
    monkeypatch.setattr("webapp.cli.load_by_name", lambda target: lambda: started)
    monkeypatch.setattr("engine.worker.start_background_worker", lambda engine: started)
    monkeypatch.setattr("webapp.server.serve", serve)
    monkeypatch.setattr(engine, "config", replace(engine.config, web_threads=3))  # as GMPFLOW_WEB_THREADS=3
    result = CliRunner().invoke(main, ["run", "--host", "0.0.0.0", "--port", "5050"])
    assert result.exit_code == 0, result.output
    assert result.output == ("ERP/MES simulator on http://127.0.0.1:8071 "
                             "(GMPFLOW_SIMULATOR=off turns it off)\n")
    assert started.served == ("0.0.0.0", 5050, 3)
    assert started.worker_stopped and started.simulator_stopped


def test_run_without_the_connectors_package_serves_without_a_simulator(
        engine: Gmpflow, monkeypatch: pytest.MonkeyPatch) -> None:
    served = []
    monkeypatch.setattr("webapp.cli.SIMULATOR", "site_connectors_not_installed.demo:start_alongside")
    monkeypatch.setattr("webapp.cli.command_engine", lambda: engine)
    monkeypatch.setattr("engine.worker.start_background_worker", lambda engine: Started())
    monkeypatch.setattr("webapp.server.serve", lambda app, host, port, threads: served.append((host, port)))
    result = CliRunner().invoke(main, ["run"])
    assert (result.exit_code, result.output, served) == (0, "", [("127.0.0.1", 5000)])


@pytest.mark.parametrize(("target", "found"), [
    ("site_hello:hello", "hello"),                                # installed
    ("site_not_installed:hello", None),                           # its package absent
    ("site_not_installed.sub.module:hello", None),                # a package above it absent
    ("site_broken:hello", ModuleNotFoundError),                   # installed, a dependency of its own missing
])
def test_a_name_is_found_or_absent_but_a_broken_module_raises(site: Path, target: str, found: Any) -> None:
    if found is ModuleNotFoundError:
        with pytest.raises(ModuleNotFoundError):
            load_by_name(target)
        return
    loaded = load_by_name(target)
    assert (loaded if loaded is None else getattr(loaded, "name", None)) == found


def test_the_built_in_pack_is_skipped_when_its_package_is_absent() -> None:
    pm = pack_manager(builtins=("site_pack_not_installed.pack",), load_entry_points=False)
    assert pm.list_name_plugin() == []


def test_the_readmes_command_table_names_every_command_once() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    table = readme.split("| command | does |", 1)[1].split("\n\n", 1)[0]
    rows = [line.split("|")[1].replace("`", "").strip() for line in table.splitlines()[2:]]
    # a row's command: `gmpflow NAME` and, for a group, its subcommand (`gmpflow audit verify`)
    keys = [re.match(r"gmpflow (\w+)(?: ([a-z]+)\b)?", row).group(0) for row in rows]  # type: ignore[union-attr]
    assert len(set(keys)) == len(keys), f"a command has two rows: merge them ({sorted(keys)})"
    named = {name for row in rows for name in re.findall(r"gmpflow (\w+)", row)}
    missing = listed(CliRunner().invoke(main, ["--help"]).output) - named
    assert not missing, f"commands the table does not name: {missing}"
