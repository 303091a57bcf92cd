"""One engine for the whole conformance corpus (each file deploys under its own process key): a fresh
database per file would spend the suite's time on setting up, not on running models."""

from __future__ import annotations

import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from engine.clock import FrozenClock
from engine.services import Gmpflow
from engine.store import Database


@pytest.fixture(scope="module")
def corpus_engine(sqlite_template: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Gmpflow]:
    path = tmp_path_factory.mktemp("conformance") / "gmpflow.db"
    shutil.copy(sqlite_template, path)
    database = Database(f"sqlite:///{path}")
    engine = Gmpflow(database, FrozenClock(), change_control="off")
    engine.record_start()
    yield engine
    database.dispose()
