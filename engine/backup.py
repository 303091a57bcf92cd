"""Backup and restore of the embedded SQLite store.

SQLite: an online backup (the database stays in use; the copy is a consistent snapshot), and a
restore that refuses to overwrite a database whose audit chain does not verify in the copy.
PostgreSQL: use pg_dump/pg_restore (README); this module says so instead of pretending.
"""

from __future__ import annotations

import shutil
import sqlite3
from pathlib import Path

from engine.audit import ChainReport, verify_chain
from engine.errors import GmpflowError, ValidationFailed
from engine.store import Database


def _sqlite_path(db: Database) -> Path:
    if not db.url.startswith("sqlite:///"):
        raise GmpflowError("Backup and restore here are for SQLite; for PostgreSQL use pg_dump and "
                           "pg_restore (see README, 'Backup and restore').", code="backup_unsupported")
    return Path(db.url.removeprefix("sqlite:///"))


def backup(db: Database, target: Path) -> Path:
    """Write a consistent copy of the live database to ``target`` (which must not exist)."""
    source = _sqlite_path(db)
    if target.exists():
        raise ValidationFailed(f"{target} exists; choose a new file for the backup.",
                               code="backup_target_exists", errors={"target": "exists"})
    target.parent.mkdir(parents=True, exist_ok=True)
    with sqlite3.connect(source) as live, sqlite3.connect(target) as copy:
        live.backup(copy)
    copy.close()
    return target


def verify_file(path: Path, audit_key_file: Path | None = None) -> ChainReport:
    """The audit chain of a backup file, checked with the installation's key (``audit_key_file``; default:
    the key next to the file)."""
    db = Database(f"sqlite:///{path}", audit_key_file=audit_key_file)
    try:
        with db.read() as session:
            return verify_chain(session)
    finally:
        db.dispose()


def restore(db: Database, source: Path) -> ChainReport:
    """Replace the database with the backup ``source`` after checking the backup's audit chain.

    Stop the web app and workers first. Raises when the backup does not verify; the current database
    is then left untouched.
    """
    target = _sqlite_path(db)
    if not source.is_file():
        raise ValidationFailed(f"There is no backup file {source}.", code="backup_not_found",
                               errors={"source": "missing"})
    report = verify_file(source, db.audit_key.path)
    if not report.ok:
        raise GmpflowError(f"The backup's audit trail does not verify (sequence {report.first_broken}: "
                           f"{report.reason}); nothing was restored.", code="backup_corrupt")
    db.dispose()
    for suffix in ("-wal", "-shm"):
        Path(f"{target}{suffix}").unlink(missing_ok=True)
    shutil.copyfile(source, target)
    return report
