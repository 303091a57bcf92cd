"""The installation's audit key and every MAC made with it (HMAC-SHA-256).

The key lives outside the database, in a file only the engine's account reads (mode 0600): by default
``audit.key`` next to the SQLite database (``instance/audit.key``), on PostgreSQL ``instance/audit.key``
under the working directory; ``GMPFLOW_AUDIT_KEY_FILE`` (``Config.audit_key_file``, which the engine passes to
its ``Database``) names another path. It is never stored in the
database or in the trail; the trail records only its ``key_id`` (a MAC of a fixed text), so that verify
can tell a wrong key file from a tampered trail.

Someone who can write the database but not read this file can no longer rewrite the audit chain and
recompute its links (``engine.audit``), nor edit a sealed row and recompute its ``row_mac``: the MACs of
instance state, task data, role grants, deployment status and users' printed names are made here, by the
writers of those rows, and rechecked by ``gmpflow audit verify`` (``engine.sealed``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
from collections.abc import Mapping
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from engine.errors import AuditKeyMissing

KEY_FILE_NAME = "audit.key"
ALGORITHM = "HMAC-SHA-256"


def default_key_file(database_url: str) -> Path:
    """Where the key is when no file is configured: ``audit.key`` next to a SQLite file, else
    ``instance/audit.key``."""
    if database_url.startswith("sqlite") and ":memory:" not in database_url:
        database = database_url.split(":///", 1)[-1].split("?", 1)[0]
        if database:
            return Path(database).parent / KEY_FILE_NAME
    return Path("instance") / KEY_FILE_NAME


def _json(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _time(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(timezone.utc).isoformat(timespec="microseconds")


# The columns each row MAC covers (what a Part 11 record depends on); a change to any is found by verify.
INSTANCE_SEALED = ("id", "deployment_id", "business_key", "status", "initiator")  # + the state text
TASK_SEALED = ("instance_id", "task_guid", "element_id", "lane", "candidate_roles", "assignee", "form_id",
               "signature_meaning", "signature_distinct_from", "state", "completed_at", "completed_by",
               "data")
DEPLOYMENT_SEALED = ("key", "version", "status", "content_hash", "created_by", "approved_by_instance_id",
                     "activated_via",  # how it went live: change-control activation trusts it
                     "change_request_instance_id",  # who holds it in review: activation trusts it too
                     "activated_at")  # that it went live at all: governance reads it (migration 0016)
USER_SEALED = ("username", "full_name", "active", "password_hash")
HISTORY_SEALED = ("instance_id", "recorded_at")  # + the tasks text


class AuditKey:
    """The key file of one installation; read on first use and then kept in memory."""

    def __init__(self, path: Path) -> None:
        self.path = path
        self._key: bytes | None = None
        self._keyed: Any = None  # an HMAC with the key's pads computed once; each MAC starts from a copy

    def exists(self) -> bool:
        return self._key is not None or self.path.is_file()

    def create(self) -> bool:
        """Write a new random key (mode 0600) unless the file exists; True when one was written."""
        if self.path.exists():
            return False
        self.path.parent.mkdir(parents=True, exist_ok=True)
        try:
            fd = os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        except FileExistsError:  # another process created it meanwhile: theirs is the key
            return False
        with os.fdopen(fd, "w", encoding="ascii") as out:
            out.write(secrets.token_hex(32) + "\n")
        return True

    @property
    def key(self) -> bytes:
        """The key's bytes. Raises AuditKeyMissing (code ``audit_key_missing``) naming the file."""
        if self._key is None:
            try:
                text = self.path.read_text(encoding="ascii").strip()
                self._key = bytes.fromhex(text)
            except FileNotFoundError:
                raise AuditKeyMissing(f"The audit key file {self.path} is missing: the audit trail cannot be "
                                      f"written or verified without it (restore it from the key backup; "
                                      "GMPFLOW_AUDIT_KEY_FILE names another path).") from None
            except (OSError, ValueError) as exc:
                raise AuditKeyMissing(f"The audit key file {self.path} cannot be read ({exc}).") from None
            if len(self._key) < 32:
                raise AuditKeyMissing(f"The audit key file {self.path} holds less than 32 bytes.")
        return self._key

    @property
    def key_id(self) -> str:
        """What the trail records of the key: a MAC of a fixed text, never the key."""
        return self.mac("gmpflow audit key id")[:16]

    def _start(self) -> Any:
        if self._keyed is None:
            self._keyed = hmac.new(self.key, digestmod=hashlib.sha256)
        return self._keyed.copy()

    def mac(self, text: str) -> str:
        found = self._start()
        found.update(text.encode("utf-8"))
        return found.hexdigest()  # type: ignore[no-any-return]

    # -- row MACs ---------------------------------------------------------------------------------------
    def instance_mac(self, values: Any, state: str) -> str:
        """``values``: an object or mapping with ``INSTANCE_SEALED``; ``state``: the stored state text."""
        mac = self._start()
        mac.update(_header("process_instance", values, INSTANCE_SEALED).encode("utf-8"))
        mac.update(state.encode("utf-8"))
        return mac.hexdigest()  # type: ignore[no-any-return]

    def history_mac(self, values: Any, tasks: str) -> str:
        """A ``task_history`` row: the finished tasks that left an instance's live tree in one step."""
        mac = self._start()
        mac.update(_header("task_history", values, HISTORY_SEALED).encode("utf-8"))
        mac.update(tasks.encode("utf-8"))
        return mac.hexdigest()  # type: ignore[no-any-return]

    def task_mac(self, values: Any) -> str:
        return self.mac(_header("human_task", values, TASK_SEALED))

    def deployment_mac(self, values: Any, names: tuple[str, ...] = DEPLOYMENT_SEALED) -> str:
        """``names``: the columns covered; a migration that changes them passes the old and new lists."""
        return self.mac(_header("deployment", values, names))

    def user_mac(self, values: Any) -> str:
        return self.mac(_header("app_user", values, USER_SEALED))

    def grant_mac(self, username: str, role: str) -> str:
        """A role grant, by username (never reused) rather than the row id the insert has not made yet."""
        return self.mac(_json(["user_role", username, role]))


def _header(table: str, values: Any, names: tuple[str, ...]) -> str:
    mapping = type(values) is dict or isinstance(values, Mapping)
    found: list[Any] = [table]
    for name in names:
        value = values.get(name) if mapping else getattr(values, name)
        if value.__class__ is datetime:
            value = _time(value)
        elif value.__class__ is bool:
            value = int(value)  # SQLite reads booleans back as 0/1
        found.append(value)
    return _json(found) + "\n"


def seal_user(key: AuditKey, user: Any) -> None:
    """Set an ``app_user`` row's MAC after its printed name, active flag or password changed."""
    user.row_mac = key.user_mac(user)


def seal_deployment(key: AuditKey, deployment: Any) -> None:
    """Set a ``deployment`` row's MAC after its status, approval or holding change request changed."""
    deployment.row_mac = key.deployment_mac(deployment)


def seal_instance(key: AuditKey, instance: Any) -> None:
    """Set an ORM ``process_instance`` row's MAC after an admin or a failure changed its status (the hot
    path seals its rows in ``engine.runtime.rows``)."""
    instance.row_mac = key.instance_mac(instance, instance.state)


def seal_task(key: AuditKey, task: Any) -> None:
    task.row_mac = key.task_mac(task)


def key_of(session: Any) -> AuditKey:
    """The audit key of a session (or unit of work) of ``engine.store.Database``. Raises AuditKeyMissing."""
    found = session.info.get("audit_key")
    if found is None:
        raise AuditKeyMissing("This session has no audit key (use a session of engine.store.Database).")
    return found  # type: ignore[no-any-return]
