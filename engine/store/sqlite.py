"""SQLite as the embedded store: WAL, and one writer at a time.

Units of work begin with ``BEGIN IMMEDIATE``, so two writers queue for the database lock instead of
failing half-way with "database is locked" when a read transaction tries to upgrade. They queue in this
process (a fair thread lock) and across processes (a file lock beside the database) rather than in
SQLite's busy handler, whose growing sleeps made the slowest requests wait seconds under load.
"""

from __future__ import annotations

import fcntl
import threading
from collections import deque
from pathlib import Path
from typing import Any

from sqlalchemy import Engine, create_engine, event
from sqlalchemy.exc import OperationalError


def file_path(url: str) -> str | None:
    """The database file of a SQLite URL; None for an in-memory or URI database."""
    path = url.removeprefix("sqlite:///")
    return path if path and path != ":memory:" and not path.startswith("file:") else None


def sqlite_engine(url: str) -> Engine:
    path = file_path(url)
    if path is not None:
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
        # on the driver itself: every read begins here (SQLAlchemy's execution costs more); a unit of work
        # began with BEGIN IMMEDIATE (``Database.transaction``), so its ORM session finds it begun already
        driver = conn.connection.driver_connection
        if not driver.in_transaction:
            driver.execute("BEGIN")

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


class WriterQueue:
    """Serializes SQLite units of work: a thread lock, then an advisory file lock beside the database
    (released by the kernel if the process dies). The lock file stays open between units of work."""

    def __init__(self, path: str | None) -> None:
        self._thread_lock = FairLock()
        self._depth = 0
        self._lock_path = f"{path}.writer-lock" if path is not None else None
        self._file: Any = None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        self._depth += 1
        if self._depth == 1 and self._lock_path is not None:
            if self._file is None:
                try:
                    self._file = open(self._lock_path, "a+b")  # noqa: SIM115 (closed by close())
                except OSError as exc:  # the database's folder is gone: the database is unavailable
                    self.__exit__()
                    raise OperationalError("opening the SQLite writer lock", None, exc) from exc
            fcntl.flock(self._file, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._depth == 0 and self._file is not None:
            fcntl.flock(self._file, fcntl.LOCK_UN)
        self._thread_lock.release()

    def close(self) -> None:
        self._thread_lock.acquire()
        try:
            if self._file is not None:
                self._file.close()
                self._file = None
        finally:
            self._thread_lock.release()
