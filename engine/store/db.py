"""Database handle: one engine, sessions for reading and for units of work.

SQLite runs in WAL mode with ``BEGIN IMMEDIATE`` for units of work, so two
writers queue on the database lock instead of failing half-way with
"database is locked" when a read transaction tries to upgrade. PostgreSQL
uses row locks (see ``engine.runtime.instances``).
"""

from __future__ import annotations

import fcntl
import os
import threading
from collections import deque
from collections.abc import Iterator
from contextlib import contextmanager, nullcontext
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

DEFAULT_URL = "sqlite:///instance/gmpflow.db"


def database_url() -> str:
    return os.environ.get("GMPFLOW_DATABASE_URL", DEFAULT_URL)


def _sqlite_engine(url: str) -> Engine:
    path = url.removeprefix("sqlite:///")
    if path and path != ":memory:" and not path.startswith("file:"):
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = create_engine(url, connect_args={"timeout": 30, "check_same_thread": False})

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection, _record):  # type: ignore[no-untyped-def]
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA synchronous=NORMAL")
        cursor.execute("PRAGMA foreign_keys=ON")
        cursor.execute("PRAGMA busy_timeout=30000")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn):  # type: ignore[no-untyped-def]
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("write") else "BEGIN")

    return engine


class FairLock:
    """A reentrant lock that hands itself to its waiters in arrival order.

    ``threading.RLock`` wakes an arbitrary waiter and lets a newcomer barge in, so under load some
    requests waited for many turns of the writer queue while others waited for none.
    """

    _HANDED = object()  # the owner while the lock passes to the next waiter

    def __init__(self) -> None:
        self._mutex = threading.Lock()
        self._waiters: deque[threading.Lock] = deque()
        self._owner: object = None
        self._depth = 0

    def acquire(self) -> None:
        me = threading.get_ident()
        with self._mutex:
            if self._owner == me:
                self._depth += 1
                return
            if self._owner is None:
                self._owner, self._depth = me, 1
                return
            turn = threading.Lock()
            turn.acquire()
            self._waiters.append(turn)
        turn.acquire()  # released by the previous owner when it is our turn
        with self._mutex:
            self._owner, self._depth = me, 1

    def release(self) -> None:
        with self._mutex:
            self._depth -= 1
            if self._depth:
                return
            if self._waiters:
                self._owner = self._HANDED
                self._waiters.popleft().release()
            else:
                self._owner = None


class _WriterQueue:
    """Serializes SQLite units of work: a thread lock, then an advisory file lock beside the database
    (released by the kernel if the process dies)."""

    def __init__(self, url: str) -> None:
        self._thread_lock = FairLock()
        self._depth = 0
        path = url.removeprefix("sqlite:///")
        self._lock_path = f"{path}.writer-lock" if path and path != ":memory:" and not path.startswith("file:") \
            else None
        self._file: Any = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        self._depth += 1
        if self._depth == 1 and self._lock_path is not None:
            try:
                self._file = open(self._lock_path, "a+b")  # noqa: SIM115 (closed in __exit__)
            except OSError as exc:  # the database's folder is gone: the database is unavailable
                self.__exit__()
                raise OperationalError("opening the SQLite writer lock", None, exc) from exc
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._file is not None:
            self._file.close()  # closing releases the file lock
            self._file = None
        self._thread_lock.release()


class Database:
    """Owns the SQLAlchemy engine. Nothing connects until a session is used."""

    def __init__(self, url: str | None = None) -> None:
        self.url = url or database_url()
        if self.url.startswith("sqlite"):
            self.engine = _sqlite_engine(self.url)
        else:
            self.engine = create_engine(self.url, pool_pre_ping=True, pool_size=10, max_overflow=20)
        self.is_postgres = self.engine.dialect.name == "postgresql"
        self._read = sessionmaker(self.engine, expire_on_commit=False)
        self._write = sessionmaker(self.engine.execution_options(write=True), expire_on_commit=False)
        # SQLite has one writer at a time. Writers queue on a lock (threads of this process) and a file
        # lock (other processes on this machine) instead of in SQLite's busy handler, whose growing sleeps
        # made the slowest requests wait seconds under load.
        self._writers = None if self.is_postgres else _WriterQueue(self.url)

    @contextmanager
    def read(self) -> Iterator[Session]:
        """A session for queries; closed (its transaction discarded) at the end, never commits.

        Objects loaded here stay readable after the block (closing detaches without expiring them).
        """
        with self._read() as session:
            yield session

    @contextmanager
    def unit_of_work(self) -> Iterator[Session]:
        """One transaction: commits when the block ends normally, rolls back on any error."""
        with self._writers or nullcontext(), self._write() as session, session.begin():
            yield session

    def dispose(self) -> None:
        self.engine.dispose()
