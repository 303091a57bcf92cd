"""Database handle: one engine, sessions for reading, and one way to write: the unit of work.

Every write transaction is a ``UnitOfWork`` (``Database.transaction``; ``Database.unit_of_work`` is the same
transaction seen through its ORM session). Its commit writes the audit events it recorded, chained
(``engine.audit.chain_pending``), before the driver commits: the change and the events that record it
commit together or not at all.

SQLite (``engine.store.sqlite``) serializes units of work; PostgreSQL uses row locks (see
``engine.runtime.rows``).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, PoolProxiedConnection, create_engine
from sqlalchemy.orm import Session, sessionmaker

from engine import audit
from engine.config import DEFAULT_DATABASE_URL
from engine.integrity import AuditKey, default_key_file
from engine.store.dbapi import DbApi, checkout
from engine.store.sqlite import WriterQueue, file_path, sqlite_engine
from engine.store.wakeup import Wakeup


def database_url() -> str:
    return os.environ.get("GMPFLOW_DATABASE_URL", DEFAULT_DATABASE_URL)


class UnitOfWork:
    """One write transaction: statements on ``db`` (the DB-API, see ``engine.store.dbapi``) and an ORM
    ``session`` on the same connection, made only when a step needs one (a signature, a message).

    ``info`` holds what the transaction carries along (the installation's ``audit_key``); the session shares
    it, and names this unit (``unit_of_work``) so that ``engine.audit.record`` finds it from a session.
    ``audit_pending``: the events recorded in this unit (``engine.audit.record``), chained at commit; they
    go with the unit when it rolls back. ``introduces_key``: it records ``audit.keyed``
    (``engine.audit.introduce_key``). ``correlation_id``: the id of the request this unit works for, which
    every event recorded in it carries (None: the engine's own work, or a request with no id).
    """

    def __init__(self, engine: Engine, pooled: PoolProxiedConnection, is_postgres: bool,
                 audit_key: AuditKey, correlation_id: str | None = None) -> None:
        self._engine, self._pooled = engine, pooled
        self.db = DbApi(pooled.driver_connection, is_postgres)
        self.audit_key = audit_key  # seals the rows this unit writes (engine.integrity)
        self.info: dict[str, Any] = {"audit_key": audit_key}
        self.audit_pending: list[dict[str, Any]] = []
        self.introduces_key = False
        self.correlation_id = correlation_id
        self._session: Session | None = None
        self._on_commit: list[Callable[[], None]] = []

    @property
    def session(self) -> Session:
        if self._session is None:
            # A SQLAlchemy connection over the same pooled connection, inside the transaction already begun
            # (its "begin" finds the driver in a transaction); committing and returning the connection to
            # the pool stay with ``Database.transaction``.
            connection = Connection(self._engine, connection=self._pooled)
            session = Session(bind=connection, join_transaction_mode="rollback_only", expire_on_commit=False)
            session.info.update(self.info, dbapi=self.db, unit_of_work=self)
            self.info, self._session = session.info, session
        return self._session

    def on_commit(self, callback: Callable[[], None]) -> None:
        self._on_commit.append(callback)

    def prepare_commit(self) -> None:
        """The session's changes, then the audit events that record them, then the ``on_commit`` callbacks:
        all in this transaction, before the driver commits."""
        if self._session is not None:
            self._session.flush()
        audit.chain_pending(self)
        for callback in self._on_commit:
            callback()

    def close(self) -> None:
        """Let go of the ORM session (its view of the transaction ends; the driver's has ended already)."""
        if self._session is not None:
            self._session.info.pop("unit_of_work", None)
            self._session.close()


class Database:
    """Owns the SQLAlchemy engine and knows the installation's audit key file (``engine.integrity``;
    ``audit_key_file`` overrides where it is looked for). Nothing connects until a session is used."""

    def __init__(self, url: str | None = None, audit_key_file: str | os.PathLike[str] | None = None) -> None:
        self.url = url or database_url()
        self.audit_key = AuditKey(Path(audit_key_file) if audit_key_file else default_key_file(self.url))
        if self.url.startswith("sqlite"):
            self.engine = sqlite_engine(self.url)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        info = {"audit_key": self.audit_key}  # copied into each session's own ``info``
        self._read = sessionmaker(self.engine, expire_on_commit=False, info=info)
        self._writers = None if self.is_postgres else WriterQueue(file_path(self.url))
        self.jobs_due = Wakeup()  # notified after each commit that wrote a job (``announce_jobs``)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; closed (its transaction discarded) at the end, never commits.

        Objects loaded here stay readable after the block (closing detaches without expiring them).
        """
        with self._read() as session:
            yield session

    @contextmanager
    def unit_of_work(self, correlation_id: str | None = None) -> Iterator[Session]:
        """The ORM session of a ``transaction()``, for writers that work with models (users, master data,
        deployments): commits when the block ends normally, rolls back on any error."""
        with self.transaction(correlation_id) as uow:
            yield uow.session

    @contextmanager
    def transaction(self, correlation_id: str | None = None) -> Iterator[UnitOfWork]:
        """A unit of work (a step, a claim, any write): commits when the block ends normally, after its ORM
        session's changes and its audit events (``UnitOfWork.prepare_commit``); rolls back on any error.
        ``correlation_id``: the request's id (``RequestContext.correlation_id``) when the unit works for a
        request; its audit events carry it.

        It runs on the pool's DB-API connection, not on a SQLAlchemy ``Connection``, whose begin, commit and
        events cost more than the driver's own commit of a small transaction (``gmpflow bench``).
        """
        with self._writers or nullcontext():
            pooled = checkout(self.engine, self.is_postgres)
            uow = UnitOfWork(self.engine, pooled, self.is_postgres, self.audit_key, correlation_id)
            try:
                if not self.is_postgres:  # psycopg begins by itself at the first statement
                    uow.db.execute("BEGIN IMMEDIATE")
                yield uow
                uow.prepare_commit()
                uow.db.commit()
            finally:
                announced = uow.db.jobs_announced
                uow.close()
                # back to the pool, whose reset rolls back what was not committed (and discards a connection
                # that cannot roll back) before the next writer may begin
                pooled.close()
        if announced:  # reached only once committed: the workers of this process may start the jobs now
            self.jobs_due.notify()

    @contextmanager
    def query(self) -> Iterator[DbApi]:
        """Reads on the DB-API without an ORM session (the hot path's inbox and job polls)."""
        pooled = checkout(self.engine, self.is_postgres)
        try:
            yield DbApi(pooled.driver_connection, self.is_postgres)
        finally:
            pooled.close()  # the pool's reset ends any transaction the driver began

    def dispose(self) -> None:
        self.engine.dispose()
        if self._writers is not None:
            self._writers.close()
