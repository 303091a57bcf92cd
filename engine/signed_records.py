"""A signature covers what the signer read: the hash of the record shown, checked when signing and kept.

A signing task names the record its signature is about with the property ``signature.record`` =
``<kind>:<expression>`` (e.g. ``batch:batch_id``); the expression, over the task's data, gives the record's
key. A record kind is a function the installation registers (``Gmpflow.record_sources``; the batch
record is ``batch``) returning the record's *facts*: what the record says, without what is volatile.

The record's hash (``record_sha256``) is SHA-256 over the canonical JSON (``engine.audit.canonical_json``:
sorted keys, no whitespace, UTF-8) of those facts, normalized as they read back from JSON. The client
sends the hash it was shown with the signature (signature member ``record_sha256``); a signature on a
record whose hash is now different is refused (Conflict ``record_changed``, before the password is
checked, so it never counts toward lockout), and one without a hash is refused too.

What is kept, and why: the signature's signed record (``Signature.record``, hashed into its own
``record_hash``) carries ``read_record`` = ``{kind, key, sha256, content}`` with the facts themselves. The
record as it was at signing time cannot be rebuilt later from the live tables (they move on), so the
snapshot is the evidence; because it sits inside the signed data, the signature's own hash, and the
``signature.created`` audit event that repeats ``record_hash``, cover it. ``audit verify`` recomputes the
SHA-256 of the kept snapshot and checks it against the hash that was signed (``snapshot_problem``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any
from uuid import UUID

from sqlalchemy.orm import Session

from engine.audit import canonical_json, normalized, sha256_hex
from engine.definitions.properties import properties_of
from engine.errors import Conflict, ValidationFailed

if TYPE_CHECKING:
    from engine.runtime.instances import Live
    from engine.runtime.tasks import Task
    from engine.spiff.script_engine import SandboxScriptEngine

PROPERTY = "signature.record"
RecordSource = Callable[[Session, str], dict[str, Any]]  # (session, key) → the record's facts


def facts_sha256(facts: Mapping[str, Any]) -> str:
    return sha256_hex(canonical_json(normalized(dict(facts))))


class RecordBinder:
    """Finds the record a signing task is about, checks the hash the signer was shown, gives a snapshot."""

    def __init__(self, sources: Mapping[str, RecordSource], script_engine: SandboxScriptEngine) -> None:
        self.sources, self.script_engine = sources, script_engine

    def target(self, task_spec: Any, data: Mapping[str, Any]) -> tuple[str, str] | None:
        """(kind, key) of the record the task's signature covers, or None when the model names none."""
        declared = properties_of(task_spec).get(PROPERTY)
        if not declared:
            return None
        kind, _, expression = declared.partition(":")
        if kind not in self.sources:
            raise ValidationFailed(f"signature.record names the record kind '{kind}', which this "
                                   "installation does not know.", code="record_kind_unknown")
        try:
            key = self.script_engine.environment.evaluate(expression, dict(data))
        except Exception as exc:
            raise ValidationFailed(f"The signed record cannot be named ({exc}).", errors={"record": str(exc)},
                                   code="record_key_invalid") from None
        return kind, str(key)

    def current(self, session: Session, kind: str, key: str) -> dict[str, Any]:
        """``{kind, key, sha256, content}`` of the record as it is now (in the caller's transaction)."""
        facts = normalized(self.sources[kind](session, key))
        return {"kind": kind, "key": key, "sha256": facts_sha256(facts), "content": facts}

    def bind(self, session: Session, task: Task, live: Live, signature: Mapping[str, Any]
             ) -> dict[str, Any] | None:
        """The snapshot to keep with the signature, or None when the task names no record. Raises
        ValidationFailed ``record_sha256_required`` or Conflict ``record_changed``."""
        spiff_task = live.workflow.get_task_from_id(UUID(task.task_guid))
        found = self.target(spiff_task.task_spec, spiff_task.data) if spiff_task is not None else None
        if found is None:
            return None
        shown = signature.get("record_sha256")
        if not isinstance(shown, str) or not shown:
            raise ValidationFailed("This signature covers a record: send the record_sha256 you were shown "
                                   "with the signature.", errors={"signature.record_sha256": "required"},
                                   code="record_sha256_required")
        snapshot = self.current(session, *found)
        if snapshot["sha256"] != shown.strip().lower():
            raise Conflict(f"The {found[0]} record {found[1]} changed since it was shown (its SHA-256 is now "
                           f"{snapshot['sha256']}); read it again before signing.", code="record_changed",
                           record_sha256=snapshot["sha256"])
        return snapshot


def snapshot_problem(signed: Mapping[str, Any]) -> str | None:
    """Why the record snapshot a signature kept does not match the hash it signed, or None."""
    read = signed.get("read_record")
    if read is None:
        return None
    if not isinstance(read, dict) or facts_sha256(read.get("content") or {}) != read.get("sha256"):
        return "the record it was given does not match the record hash it signed"
    return None
