"""The engine fixtures every test folder shares (tests/ and processes/; a plugin of the root conftest.py):
an engine on a fresh, migrated database (SQLite always, PostgreSQL too when GMPFLOW_TEST_POSTGRES_URL is
set) and an injected clock the tests move."""

from __future__ import annotations

import os
import shutil
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from engine.audit import Actor
from engine.clock import FrozenClock
from engine.identity import Principal
from engine.packs import schema
from engine.request_context import RequestContext
from engine.services import Gmpflow
from engine.store import Database
from engine.store.migrate import upgrade

POSTGRES_URL = os.environ.get("GMPFLOW_TEST_POSTGRES_URL")
BACKENDS = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


def pytest_report_header(config: pytest.Config) -> str:
    if POSTGRES_URL:
        return f"PostgreSQL tests: on ({POSTGRES_URL.rsplit('@', 1)[-1]})"
    return "PostgreSQL tests: SKIPPED, GMPFLOW_TEST_POSTGRES_URL is not set"


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A migrated SQLite file, copied for every test (migrating each time would be slow)."""
    path = tmp_path_factory.mktemp("template") / "template.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db)
    with db.engine.connect() as conn:
        conn.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    db.dispose()
    return path


@pytest.fixture(scope="session")
def postgres_database(worker_id: str) -> Iterator[str]:
    """One PostgreSQL database per xdist worker, migrated once."""
    if not POSTGRES_URL:
        pytest.skip("PostgreSQL tests need GMPFLOW_TEST_POSTGRES_URL (e.g. postgresql+psycopg://127.0.0.1/test)")
    name = f"gmpflow_test_{worker_id}_{os.getpid()}"
    # no idle connections
    admin = create_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT", poolclass=NullPool)
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = POSTGRES_URL.rsplit("/", 1)[0] + "/" + name
    db = Database(url)
    upgrade(db)
    db.dispose()
    yield url
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    admin.dispose()


def emptied_postgres(url: str, audit_key_file: Path) -> Database:
    """The migrated PostgreSQL database of this xdist worker, every table emptied (faster than migrating),
    with its own audit key file (a test's tmp_path: never shared between tests or xdist workers)."""
    db = Database(url, audit_key_file=audit_key_file)
    tables = ", ".join(f'"{t.name}"' for t in schema().sorted_tables)
    with db.engine.begin() as conn:
        conn.execute(text(f"TRUNCATE {tables} RESTART IDENTITY CASCADE"))
    return db


@pytest.fixture(params=BACKENDS)
def database(  # SQLite: the audit key is the default one, next to the database file in tmp_path
    request: pytest.FixtureRequest, tmp_path: Path, sqlite_template: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        path = tmp_path / "gmpflow.db"
        shutil.copy(sqlite_template, path)
        db = Database(f"sqlite:///{path}")
    else:
        db = emptied_postgres(request.getfixturevalue("postgres_database"), tmp_path / "audit.key")
    yield db
    db.dispose()


@pytest.fixture
def clock() -> FrozenClock:
    return FrozenClock()


def configure(engine: Gmpflow, **settings: Any) -> None:
    """The engine reads these settings (``engine.config.Config`` fields) from now on, as if its installation's
    environment had said so: for the settings read at use (token hours, lockout, forms and master-data
    folders, archive, anchor interval)."""
    engine.config = replace(engine.config, **settings)


def request_of(engine: Gmpflow, caller: Principal | Actor, reason: str | None = None) -> RequestContext:
    """A request of ``caller`` now (the engine's clock), for ``reason``."""
    return RequestContext.of(caller, engine.clock.now()).because(reason)


@pytest.fixture
def engine(database: Database, clock: FrozenClock) -> Gmpflow:
    """An engine on an empty, migrated database, change control off, default roles present."""
    gmp = Gmpflow(database, clock, change_control="off")
    gmp.record_start()
    return gmp
