"""The installation's configuration (``engine.config``): one object built once from the environment and passed
to the engine, the web app, the worker and the CLI; one catalogue naming every ``GMPFLOW_*`` variable the
engine, the web app and the GMP pack read; and no module but ``engine.config`` reading one from the
environment."""

from __future__ import annotations

import ast
import re
from dataclasses import fields
from datetime import timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from engine.config import SETTINGS, Config
from engine.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("engine", "webapp", "gmp")
# the modules that may still read a GMPFLOW_* variable themselves (engine.config's docstring says why)
ENVIRONMENT_READERS = {"engine/config.py", "engine/failpoints.py", "engine/store/db.py"}
NOT_IN_CONFIG = {"GMPFLOW_FAILPOINT": "engine.failpoints", "GMPFLOW_SIMULATOR": "connectors.simulator.demo"}

# a value other than the default for every setting Config holds, and what it becomes
SAMPLES = {
    "GMPFLOW_DATABASE_URL": ("postgresql+psycopg://gmp@db/gmp", "postgresql+psycopg://gmp@db/gmp"),
    "GMPFLOW_CHANGE_CONTROL": ("off", "off"),
    "GMPFLOW_CHANGE_CONTROL_PROCESS": ("site_change_control", "site_change_control"),
    "GMPFLOW_TOKEN_HOURS": ("0.5", 0.5),
    "GMPFLOW_LOCKOUT_ATTEMPTS": ("3", 3),
    "GMPFLOW_JOB_LEASE_SECONDS": ("2", timedelta(seconds=2)),
    "GMPFLOW_AUDIT_KEY_FILE": ("/keys/audit.key", Path("/keys/audit.key")),
    "GMPFLOW_AUDIT_ANCHOR_FILE": ("/worm/anchors.jsonl", Path("/worm/anchors.jsonl")),
    "GMPFLOW_AUDIT_ANCHOR_INTERVAL": ("0", 0.0),
    "GMPFLOW_FORMS_PATH": ("/site/forms:/more/forms", (Path("/site/forms"), Path("/more/forms"))),
    "GMPFLOW_MASTERDATA_PATH": ("/site/masterdata", Path("/site/masterdata")),
    "GMPFLOW_SECRET_KEY": ("s3cret", "s3cret"),
    "GMPFLOW_SESSION_COOKIE_SECURE": ("0", False),
    "GMPFLOW_SESSION_IDLE_MINUTES": ("5", 5.0),
    "GMPFLOW_PASSWORD_RATE_LIMIT": ("5 per hour", "5 per hour"),
    "GMPFLOW_RATE_LIMIT_STORAGE_URI": ("redis://cache:6379", "redis://cache:6379"),
    "GMPFLOW_ARCHIVE_DIR": ("/archive", Path("/archive")),
    "GMPFLOW_WEB_THREADS": ("6", 6),
}

BAD_VALUES = [
    ("GMPFLOW_CHANGE_CONTROL", "sometimes"),
    ("GMPFLOW_TOKEN_HOURS", "eight"), ("GMPFLOW_TOKEN_HOURS", "0"), ("GMPFLOW_TOKEN_HOURS", "1e9"),
    ("GMPFLOW_LOCKOUT_ATTEMPTS", "0"), ("GMPFLOW_LOCKOUT_ATTEMPTS", "2.5"),
    ("GMPFLOW_JOB_LEASE_SECONDS", "-1"), ("GMPFLOW_JOB_LEASE_SECONDS", "soon"),
    ("GMPFLOW_AUDIT_ANCHOR_INTERVAL", "-5"), ("GMPFLOW_AUDIT_ANCHOR_INTERVAL", "hourly"),
    ("GMPFLOW_SESSION_IDLE_MINUTES", "0"), ("GMPFLOW_SESSION_IDLE_MINUTES", "a while"),
    ("GMPFLOW_WEB_THREADS", "0"), ("GMPFLOW_WEB_THREADS", "many"), ("GMPFLOW_WEB_THREADS", "500"),
]


def test_every_setting_the_config_holds_is_read_from_its_variable() -> None:
    assert set(SAMPLES) == {s.name for s in SETTINGS} - set(NOT_IN_CONFIG)
    default = Config.from_environ({})
    assert default == Config()
    for setting in SETTINGS:
        if setting.name in NOT_IN_CONFIG:
            assert setting.read_by == NOT_IN_CONFIG[setting.name]
            continue
        value, expected = SAMPLES[setting.name]
        configured = Config.from_environ({setting.name: value})
        assert getattr(configured, setting.read_by) == expected, setting.name
        assert getattr(configured, setting.read_by) != getattr(default, setting.read_by), setting.name
    assert {s.read_by for s in SETTINGS} - set(NOT_IN_CONFIG.values()) == {f.name for f in fields(Config)}


def test_an_empty_variable_keeps_the_default() -> None:
    assert Config.from_environ({name: "" for name in SAMPLES}) == Config()


@pytest.mark.parametrize("name,value", BAD_VALUES)
def test_a_value_that_means_nothing_is_refused_naming_the_variable(name: str, value: str) -> None:
    with pytest.raises(DefinitionError) as refused:
        Config.from_environ({name: value})
    assert refused.value.code == "bad_setting"
    assert name in refused.value.message and f"'{value}'" in refused.value.message


def test_a_command_with_a_bad_setting_stops_at_once_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    from engine.cli import main

    monkeypatch.setenv("GMPFLOW_LOCKOUT_ATTEMPTS", "many")
    result = CliRunner().invoke(main, ["audit", "verify"])
    assert result.exit_code == 1
    assert "error [bad_setting]: GMPFLOW_LOCKOUT_ATTEMPTS must be" in result.output


def test_an_engine_reads_its_settings_from_the_config_it_is_given(tmp_path: Path) -> None:
    from engine.services import Gmpflow

    url = f"sqlite:///{tmp_path}/c.db"
    config = Config(change_control="off", change_control_process="site_change_control", database_url=url,
                    audit_key_file=tmp_path / "keys" / "k.key", job_lease=timedelta(seconds=7))
    engine = Gmpflow(config=config)
    assert (engine.change_control, engine.change_control_process) == ("off", "site_change_control")
    assert (engine.db.url, engine.db.audit_key.path) == (url, tmp_path / "keys" / "k.key")
    assert engine.jobs.lease == timedelta(seconds=7)
    engine.db.dispose()


def test_the_web_app_takes_its_settings_from_the_engines_config(tmp_path: Path) -> None:
    from engine.services import Gmpflow
    from webapp import create_app

    config = Config.from_environ({"GMPFLOW_DATABASE_URL": f"sqlite:///{tmp_path}/w.db",
                                  "GMPFLOW_SECRET_KEY": "from-the-config",
                                  "GMPFLOW_SESSION_COOKIE_SECURE": "0", "GMPFLOW_SESSION_IDLE_MINUTES": "5",
                                  "GMPFLOW_PASSWORD_RATE_LIMIT": "3 per hour"})
    engine = Gmpflow(config=config)
    app = create_app(engine=engine)
    assert (app.config["SECRET_KEY"], app.config["SESSION_COOKIE_SECURE"], app.config["SESSION_IDLE_MINUTES"],
            app.config["GMPFLOW_PASSWORD_RATE_LIMIT"]) == ("from-the-config", False, 5.0, "3 per hour")
    assert create_app({"SECRET_KEY": "given"}, engine=engine).config["SECRET_KEY"] == "given"
    engine.db.dispose()


def test_every_setting_the_engine_the_web_app_and_the_pack_name_is_in_the_catalogue() -> None:
    named = {name for package in PACKAGES for path in (ROOT / package).rglob("*.py")
             if not path.name.startswith("test_") and path != ROOT / "engine" / "config.py"
             for name in re.findall(r"\b(GMPFLOW_[A-Z_]+[A-Z])\b", path.read_text())}
    catalogued = {s.name for s in SETTINGS}
    assert "GMPFLOW_DATABASE_URL" in named
    assert named <= catalogued | {"GMPFLOW_BENCH_POSTGRES_URL", "GMPFLOW_TEST_POSTGRES_URL"}, \
        f"not catalogued: {sorted(named - catalogued)}"


def _environment_reads(tree: ast.Module) -> list[tuple[int, str]]:
    """``os.environ.get(X)``, ``os.environ[X]``, ``os.getenv(X)``, ``X in os.environ`` (also on ``environ``
    imported from os) where X is a GMPFLOW_* literal or a module constant holding one."""
    constants = {target.id: node.value.value for node in tree.body if isinstance(node, ast.Assign)
                 and isinstance(node.value, ast.Constant) and isinstance(node.value.value, str)
                 for target in node.targets if isinstance(target, ast.Name)}

    def named(node: ast.AST) -> str | None:
        value = node.value if isinstance(node, ast.Constant) else \
            constants.get(node.id) if isinstance(node, ast.Name) else None
        return value if isinstance(value, str) and value.startswith("GMPFLOW_") else None

    def is_environ(node: ast.AST) -> bool:
        on_os = isinstance(node, ast.Attribute) and isinstance(node.value, ast.Name) and node.value.id == "os"
        return (on_os and node.attr == "environ") or (isinstance(node, ast.Name) and node.id == "environ")

    found = []
    for node in ast.walk(tree):
        key: ast.AST | None = None
        if isinstance(node, ast.Call) and node.args:
            function = node.func
            if isinstance(function, ast.Attribute) and (
                    (function.attr in ("get", "pop", "setdefault") and is_environ(function.value))
                    or (function.attr == "getenv" and isinstance(function.value, ast.Name)
                        and function.value.id == "os")):
                key = node.args[0]
        elif isinstance(node, ast.Subscript) and is_environ(node.value):
            key = node.slice
        elif isinstance(node, ast.Compare) and any(is_environ(c) for c in node.comparators):
            key = node.left
        if key is not None and (name := named(key)):
            found.append((node.lineno, name))
    return found


def test_no_module_but_the_configuration_reads_a_setting_from_the_environment() -> None:
    reads = {f"{path.relative_to(ROOT)}:{line}": name for package in PACKAGES
             for path in sorted((ROOT / package).rglob("*.py")) if not path.name.startswith("test_")
             and str(path.relative_to(ROOT)) not in ENVIRONMENT_READERS
             for line, name in _environment_reads(ast.parse(path.read_text()))}
    assert reads == {}, f"read engine.config.Config instead: {reads}"


def test_the_check_finds_every_way_of_reading_a_variable() -> None:
    source = ('import os\nfrom os import environ\nKEY = "GMPFLOW_KEY"\n'
              'a = os.environ.get("GMPFLOW_A")\nb = os.environ["GMPFLOW_B"]\nc = os.getenv("GMPFLOW_C")\n'
              'd = "GMPFLOW_D" in os.environ\ne = environ.get(KEY)\nf = os.environ.get("HOME")\n')
    assert [name for _, name in _environment_reads(ast.parse(source))] == [
        "GMPFLOW_A", "GMPFLOW_B", "GMPFLOW_C", "GMPFLOW_D", "GMPFLOW_KEY"]
