"""The hot path's statements, run on the DB-API connection of the unit of work's transaction.

Starting an instance, completing a task, running a job and reading an inbox are what every user and
worker does all day. SQLAlchemy spends about 20 µs building, binding and reading each statement and the
ORM several times that, where the driver itself needs about 5 µs (``gmpflow bench``). So those few
statements are written in SQL and run here, on the same connection and in the same transaction as any
ORM work of the unit of work, with values bound and read exactly as the models' column types store them
(``UtcDateTime``: UTC; on SQLite naive ISO text; ``JSON``: JSON text), so either way of reading a row
sees the same thing. Everything else keeps the ORM.

SQL is written once with ``:name`` parameters (sqlite3's own style) and rewritten to ``%(name)s`` for
psycopg; it must not contain ``::`` casts or literal ``%`` signs.
"""

from __future__ import annotations

import json
import re
import sqlite3
from collections.abc import Iterable, Mapping
from datetime import datetime, timezone
from functools import lru_cache
from typing import Any

from sqlalchemy import Engine, PoolProxiedConnection
from sqlalchemy.exc import DBAPIError, StatementError
from sqlalchemy.orm import Session

_PARAMETER = re.compile(r"(?<![:\w]):(\w+)")


@lru_cache(maxsize=1024)
def _pyformat(sql: str) -> str:
    return _PARAMETER.sub(r"%(\1)s", sql)


@lru_cache(maxsize=2)
def _driver_error(is_postgres: bool) -> type[Exception]:
    """The driver's base exception class (PEP 249 ``Error``)."""
    if is_postgres:
        import psycopg  # only installed where PostgreSQL is used

        return psycopg.Error
    return sqlite3.Error


def _as_sqlalchemy(exc: Exception, statement: str, params: Any, is_postgres: bool) -> StatementError:
    """A driver error as SQLAlchemy raises it (an ``OperationalError`` is a database outage wherever it
    comes from); the callers keep their ``try`` inline: it costs nothing on the hot path until it raises."""
    return DBAPIError.instance(statement, params, exc, _driver_error(is_postgres))


class DbApi:
    """The unit of work's DB-API connection (sqlite3 or psycopg), with the store's value conventions."""

    __slots__ = ("connection", "is_postgres", "jobs_announced")

    def __init__(self, connection: Any, is_postgres: bool) -> None:
        self.connection, self.is_postgres = connection, is_postgres
        self.jobs_announced = False  # this transaction wrote a job: wake the workers once it commits

    # -- statements -----------------------------------------------------------------------------------
    def execute(self, sql: str, params: Mapping[str, Any] | None = None) -> Any:
        """Run one statement; returns the driver's cursor. Driver errors are raised as SQLAlchemy's."""
        try:
            if self.is_postgres:
                return self.connection.execute(_pyformat(sql), params)
            return self.connection.execute(sql, params or {})
        except _driver_error(self.is_postgres) as exc:
            raise _as_sqlalchemy(exc, sql, params, self.is_postgres) from exc

    def first(self, sql: str, params: Mapping[str, Any] | None = None) -> tuple[Any, ...] | None:
        return self.execute(sql, params).fetchone()  # type: ignore[no-any-return]

    def all(self, sql: str, params: Mapping[str, Any] | None = None) -> list[tuple[Any, ...]]:
        return self.execute(sql, params).fetchall()  # type: ignore[no-any-return]

    def many(self, sql: str, rows: Iterable[Mapping[str, Any]]) -> None:
        """One statement for each of ``rows`` (inserts without RETURNING)."""
        try:
            if self.is_postgres:
                with self.connection.cursor() as cursor:
                    cursor.executemany(_pyformat(sql), rows)
            else:
                self.connection.executemany(sql, rows)
        except _driver_error(self.is_postgres) as exc:
            raise _as_sqlalchemy(exc, sql, None, self.is_postgres) from exc

    def commit(self) -> None:
        try:
            self.connection.commit()
        except _driver_error(self.is_postgres) as exc:
            raise _as_sqlalchemy(exc, "COMMIT", None, self.is_postgres) from exc

    # -- values, as the models' column types store them ----------------------------------------------
    def time(self, value: datetime | None) -> Any:
        """A ``UtcDateTime`` parameter; naive datetimes are refused as the column type refuses them."""
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use engine.clock")
        utc = value.astimezone(timezone.utc)
        return utc if self.is_postgres else utc.replace(tzinfo=None).isoformat(" ", "microseconds")

    def read_time(self, value: Any) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):  # SQLite
            return datetime.fromisoformat(value).replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)  # type: ignore[no-any-return]

    @staticmethod
    def json(value: Any) -> str | None:
        """A ``JSON`` parameter (psycopg passes text to a json column untyped; PostgreSQL casts it)."""
        return None if value is None else json.dumps(value)

    def read_json(self, value: Any) -> Any:
        if isinstance(value, str) and not self.is_postgres:  # psycopg has parsed it already
            return json.loads(value)
        return value


def checkout(engine: Engine, is_postgres: bool) -> PoolProxiedConnection:
    """A connection from the engine's pool; a driver error on connecting is raised as SQLAlchemy's, as a
    SQLAlchemy ``Connection`` would raise it."""
    try:
        return engine.raw_connection()
    except _driver_error(is_postgres) as exc:
        raise _as_sqlalchemy(exc, "connect", None, is_postgres) from exc


def dbapi(session: Session) -> DbApi:
    """The DB-API connection of ``session``'s transaction: its unit of work's (``engine.store.db``), else
    that of a read session's current transaction (begun here if it was not yet; not kept, as the next
    transaction of the session may run on another connection)."""
    found: DbApi | None = session.info.get("dbapi")
    if found is None:
        connection = session.connection()
        found = DbApi(connection.connection.driver_connection, connection.dialect.name == "postgresql")
    return found


def placeholders(name: str, count: int) -> str:
    """``:name0, :name1, ...`` for an ``IN (...)`` list of ``count`` values."""
    return ", ".join(f":{name}{i}" for i in range(count))


def numbered(name: str, values: Iterable[Any]) -> dict[str, Any]:
    """The parameters that ``placeholders(name, len(values))`` names."""
    return {f"{name}{i}": value for i, value in enumerate(values)}
