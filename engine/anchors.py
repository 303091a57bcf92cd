"""Anchors: checkpoints of the audit chain's head, appended to a file outside the database.

A keyed chain (``engine.audit``) cannot be rewritten without the key, but someone who can write the
database can still cut its tail (delete the last events and set the head back) or put back an older copy
of the database. ``gmpflow audit anchor`` and the scheduler (``engine.worker``, every
``GMPFLOW_AUDIT_ANCHOR_INTERVAL`` seconds, hourly by default) therefore append one line per checkpoint,
``{n, seq, mac, at, key_id, prev, line_mac}``, to ``GMPFLOW_AUDIT_ANCHOR_FILE`` (default
``audit-anchors.jsonl`` next to the audit key, ``instance/``). Each line is MACed with the audit key
and carries the MAC of the line before it, so an edited, removed or re-ordered line is found; the trail
records each anchor too (``audit.anchored``), so a line removed from the end is found as well. ``audit
verify`` checks the database against every line: an anchored event that is gone (a cut tail, an older
database) or differs (a replaced head, another chain) fails verification, naming the sequence number.

The file is opened only to append (``O_APPEND``), under an exclusive lock, one line per write. A site
that wants more than a file adds a ``CheckpointStore`` (an RFC 3161 time-stamp authority over the line's
SHA-256, a WORM bucket with object lock) to ``Gmpflow.checkpoint_stores``: every line is handed to each
store after it is in the file. One anchor file per installation: on several hosts, share it or anchor
on one host only (interval 0 elsewhere).
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine.audit import GENESIS, canonical_json
from engine.errors import GmpflowError
from engine.integrity import AuditKey
from engine.store.models import AuditEvent, AuditHead

ANCHOR_FILE_NAME = "audit-anchors.jsonl"
ANCHORED_ACTION = "audit.anchored"
LINE_FIELDS = ("n", "seq", "mac", "at", "key_id", "prev")


def default_anchor_file(key_file: Path) -> Path:
    """Where the checkpoints go when no file is configured (``Config.audit_anchor_file``): beside the key."""
    return key_file.parent / ANCHOR_FILE_NAME


class CheckpointStore(Protocol):
    """Somewhere else a checkpoint line goes after the anchor file (a TSA, a WORM store)."""

    def append(self, line: dict[str, Any]) -> None: ...


class AnchorBroken(GmpflowError):
    code = "anchor_file_broken"


@dataclass(frozen=True)
class AnchorProblem:
    reason: str
    first_broken: int | None = None


class AnchorFile:
    def __init__(self, path: Path, key: AuditKey) -> None:
        self.path, self.key = path, key
        self._fd = -1  # the open file while ``locked``

    def line_mac(self, line: dict[str, Any]) -> str:
        return self.key.mac(canonical_json({name: line.get(name) for name in LINE_FIELDS}))

    def read(self) -> list[dict[str, Any]]:
        """Every line, checked (its MAC, its number, its link to the line before). Raises AnchorBroken."""
        if not self.path.exists():
            return []
        lines: list[dict[str, Any]] = []
        with self.path.open(encoding="utf-8") as source:
            for number, text in enumerate(source, start=1):
                try:
                    line = json.loads(text)
                except ValueError:
                    raise AnchorBroken(f"line {number} of the anchor file {self.path} is not JSON "
                                       "(edited)") from None
                if not isinstance(line, dict) or self.line_mac(line) != line.get("line_mac"):
                    raise AnchorBroken(f"line {number} of the anchor file {self.path} does not match its MAC "
                                       "(edited, or made without the audit key)")
                prev = lines[-1]["line_mac"] if lines else GENESIS
                if line.get("n") != number or line.get("prev") != prev:
                    raise AnchorBroken(f"line {number} of the anchor file {self.path} does not follow the "
                                       "line before it (a line was removed or moved)")
                lines.append(line)
        return lines

    @contextmanager
    def locked(self) -> Iterator[list[dict[str, Any]]]:
        """The checked lines, under an exclusive lock on the file until the block ends (appenders in other
        processes wait)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o600)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX)
            self._fd = fd
            yield self.read()
        finally:
            os.close(fd)  # releases the lock

    def append(self, lines: list[dict[str, Any]], seq: int, mac: str, at: datetime) -> dict[str, Any]:
        """Write the next line (inside ``locked``, whose lines are ``lines``), synced to disk."""
        line: dict[str, Any] = {"n": len(lines) + 1, "seq": seq, "mac": mac,
                                "at": at.astimezone(timezone.utc).isoformat(timespec="microseconds"),
                                "key_id": self.key.key_id,
                                "prev": lines[-1]["line_mac"] if lines else GENESIS}
        line["line_mac"] = self.line_mac(line)
        os.write(self._fd, (canonical_json(line) + "\n").encode("utf-8"))
        os.fsync(self._fd)
        return line


def verify(session: Session, anchors: AnchorFile) -> tuple[int, AnchorProblem | None]:
    """(lines checked, the first problem or None): the database against every checkpoint, and every
    checkpoint the trail records against the file. Call after the chain itself verified."""
    try:
        lines = anchors.read()
    except AnchorBroken as exc:
        return 0, AnchorProblem(str(exc))
    head = session.get(AuditHead, 1)
    head_seq = head.seq if head is not None else 0
    by_number = {line["n"]: line for line in lines}
    for line in lines:
        if line["seq"] > head_seq:
            return len(lines), AnchorProblem(
                f"anchor {line['n']} recorded event {line['seq']} but the trail ends at {head_seq}: events "
                f"were cut from its end (or an older copy of the database is in use)", head_seq + 1)
    hashes = _hashes(session, sorted({line["seq"] for line in lines}))
    for line in lines:
        if hashes.get(line["seq"]) != line["mac"]:
            return len(lines), AnchorProblem(
                f"event {line['seq']} is not the one anchor {line['n']} recorded at {line['at']}: the trail "
                "was replaced from there on", line["seq"])
    for ev in session.scalars(select(AuditEvent).where(AuditEvent.action == ANCHORED_ACTION)
                              .order_by(AuditEvent.seq)):
        recorded = ev.after or {}
        found = by_number.get(recorded.get("anchor"))
        if found is None or found["line_mac"] != recorded.get("line_mac"):
            return len(lines), AnchorProblem(
                f"anchor {recorded.get('anchor')}, recorded in the trail at event {ev.seq}, is missing from "
                f"(or differs in) the anchor file {anchors.path}: lines were removed", ev.seq)
    return len(lines), None


def _hashes(session: Session, seqs: list[int]) -> dict[int, str]:
    found: dict[int, str] = {}
    for start in range(0, len(seqs), 500):
        chunk = seqs[start:start + 500]
        found.update({seq: mac for seq, mac in session.execute(
            select(AuditEvent.seq, AuditEvent.hash).where(AuditEvent.seq.in_(chunk)))})
    return found
