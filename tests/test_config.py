"""The installation's configuration (``engine.config``): one object built from the environment for the
engine's composition, and one catalogue naming every ``GMPFLOW_*`` variable the engine, the web app and the
GMP pack read."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from engine.config import SETTINGS, Config
from engine.errors import DefinitionError

ROOT = Path(__file__).resolve().parents[1]


def test_the_environment_gives_the_change_control_settings() -> None:
    config = Config.from_environ({"GMPFLOW_CHANGE_CONTROL": "off",
                                  "GMPFLOW_CHANGE_CONTROL_PROCESS": "site_change_control"})
    assert config == Config(change_control="off", change_control_process="site_change_control")
    assert Config.from_environ({}) == Config(change_control="required",
                                             change_control_process="change_control")


def test_a_change_control_mode_that_means_nothing_is_refused_naming_the_variable() -> None:
    with pytest.raises(DefinitionError) as refused:
        Config.from_environ({"GMPFLOW_CHANGE_CONTROL": "sometimes"})
    assert refused.value.code == "bad_setting" and "GMPFLOW_CHANGE_CONTROL" in refused.value.message


def test_an_engine_reads_its_change_control_from_the_config_it_is_given(tmp_path: Path) -> None:
    from engine.services import Gmpflow
    from engine.store import Database

    engine = Gmpflow(Database(f"sqlite:///{tmp_path}/c.db"), config=Config("off", "site_change_control"))
    assert (engine.change_control, engine.change_control_process) == ("off", "site_change_control")


def test_every_setting_the_engine_the_web_app_and_the_pack_read_is_in_the_catalogue() -> None:
    read = {name for package in ("engine", "webapp", "gmp") for path in (ROOT / package).rglob("*.py")
            if not path.name.startswith("test_")
            for name in re.findall(r"[\"'](GMPFLOW_[A-Z_]+)[\"']", path.read_text())}
    catalogued = {s.name for s in SETTINGS}
    assert "GMPFLOW_DATABASE_URL" in read
    assert read == catalogued, f"not catalogued: {sorted(read - catalogued)}; read by nobody: " \
                               f"{sorted(catalogued - read)}"
