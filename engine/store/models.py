"""Typed SQLAlchemy models of the store. States are enums in ``engine.states``."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

from sqlalchemy import JSON, BigInteger, ForeignKey, Index, Integer, String, Text, UniqueConstraint, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship
from sqlalchemy.types import DateTime, TypeDecorator

# SQLite has no BIGINT autoincrement; keep 64-bit ids on PostgreSQL.
BigId = BigInteger().with_variant(Integer(), "sqlite")


class UtcDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores naive text)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to the store; use engine.clock")
        return None if value is None else value.astimezone(timezone.utc)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


class Base(DeclarativeBase):
    type_annotation_map = {datetime: UtcDateTime, dict[str, Any]: JSON, list[Any]: JSON}


class Setting(Base):
    """Installation-wide values: the token secret, the change-control mode in force."""

    __tablename__ = "setting"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class Deployment(Base):
    """One immutable version of a process bundle."""

    __tablename__ = "deployment"
    __table_args__ = (UniqueConstraint("key", "version"), Index("ix_deployment_key_status", "key", "status"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    key: Mapped[str] = mapped_column(String(200))
    version: Mapped[int]
    name: Mapped[str] = mapped_column(String(300))
    status: Mapped[str] = mapped_column(String(20))
    content_hash: Mapped[str] = mapped_column(String(64), index=True)
    files: Mapped[dict[str, Any]] = mapped_column(JSON, deferred=True)  # file name -> text; read on access
    created_by: Mapped[str] = mapped_column(String(100))
    created_at: Mapped[datetime]
    activated_at: Mapped[datetime | None]
    approved_by_instance_id: Mapped[int | None] = mapped_column(BigId)
    activated_via: Mapped[str | None] = mapped_column(String(20))  # states.Activation; None: never active
    # the change-request instance that claimed it for review (it holds it while ``in_review`` and unfinished);
    # kept afterwards, as a master-data version's: after a change-control activation, the approving instance
    change_request_instance_id: Mapped[int | None] = mapped_column(BigId)
    row_mac: Mapped[str | None] = mapped_column(String(64))  # engine.integrity: status, approval, holder...


class ProcessInstance(Base):
    __tablename__ = "process_instance"
    __table_args__ = (
        Index("ix_instance_status_started", "status", "started_at"),
        Index("ix_instance_business_key", "business_key", "process_key"),  # lookups by both: see 0004
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    deployment_id: Mapped[int] = mapped_column(ForeignKey("deployment.id"), index=True)
    process_key: Mapped[str] = mapped_column(String(200), index=True)
    business_key: Mapped[str | None] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(20))
    status_reason: Mapped[str | None] = mapped_column(Text)
    initiator: Mapped[str] = mapped_column(String(100))
    started_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    ended_at: Mapped[datetime | None]
    serializer_version: Mapped[str] = mapped_column(String(20))
    state: Mapped[str] = mapped_column(Text, deferred=True)  # SpiffWorkflow state, JSON, without the spec
    lock_version: Mapped[int] = mapped_column(default=1)
    row_mac: Mapped[str | None] = mapped_column(String(64))  # engine.integrity: state, status, who, what

    __mapper_args__ = {"version_id_col": lock_version}  # optimistic lock: a stale write raises

    deployment: Mapped[Deployment] = relationship(lazy="joined")

    @property
    def version(self) -> int:
        """The deployment's version number (as on ``engine.runtime.rows.InstanceRow``)."""
        return self.deployment.version

    @property
    def content_hash(self) -> str:
        return self.deployment.content_hash


class HumanTask(Base):
    """The inbox index: inbox queries never touch the serialized state."""

    __tablename__ = "human_task"
    __table_args__ = (Index("ix_task_state_lane", "state", "lane"),
                      Index("ix_task_assignee", "assignee", "state"))

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[str] = mapped_column(String(36), unique=True)
    element_id: Mapped[str] = mapped_column(String(200))
    name: Mapped[str] = mapped_column(String(300))
    lane: Mapped[str | None] = mapped_column(String(100))
    candidate_roles: Mapped[list[Any]]
    assignee: Mapped[str | None] = mapped_column(String(100))
    form_id: Mapped[str | None] = mapped_column(String(200))
    instructions: Mapped[str | None] = mapped_column(Text)
    signature_meaning: Mapped[str | None] = mapped_column(String(100))
    signature_distinct_from: Mapped[str | None] = mapped_column(String(500))
    due_at: Mapped[datetime | None]
    state: Mapped[str] = mapped_column(String(20))
    created_at: Mapped[datetime]
    completed_at: Mapped[datetime | None]
    completed_by: Mapped[str | None] = mapped_column(String(100))
    data: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    row_mac: Mapped[str | None] = mapped_column(String(64))  # engine.integrity: data, assignee, state


class Job(Base):
    """Work the engine owes: a service-task call, a timer, a message expiry."""

    __tablename__ = "job"
    __table_args__ = (Index("ix_job_due", "state", "due_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    kind: Mapped[str] = mapped_column(String(20))
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    deployment_id: Mapped[int | None] = mapped_column(ForeignKey("deployment.id"))
    task_guid: Mapped[str | None] = mapped_column(String(36))
    element_id: Mapped[str | None] = mapped_column(String(200))
    operation: Mapped[str | None] = mapped_column(String(200))
    payload: Mapped[dict[str, Any]]
    state: Mapped[str] = mapped_column(String(20))
    due_at: Mapped[datetime]
    attempts: Mapped[int] = mapped_column(default=0)
    max_attempts: Mapped[int] = mapped_column(default=3)
    locked_by: Mapped[str | None] = mapped_column(String(100))
    lock_expires_at: Mapped[datetime | None]
    last_error: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class Incident(Base):
    __tablename__ = "incident"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    job_id: Mapped[int] = mapped_column(ForeignKey("job.id"), index=True)
    instance_id: Mapped[int | None] = mapped_column(ForeignKey("process_instance.id"), index=True)
    element_id: Mapped[str | None] = mapped_column(String(200))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int]
    created_at: Mapped[datetime]
    resolved_at: Mapped[datetime | None]
    resolved_by: Mapped[str | None] = mapped_column(String(100))
    resolution_reason: Mapped[str | None] = mapped_column(Text)


class Message(Base):
    """An inbound message; an unmatched one waits until ``expires_at``."""

    __tablename__ = "message"
    __table_args__ = (Index("ix_message_name_status", "name", "status"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    correlation_keys: Mapped[dict[str, Any]]
    payload: Mapped[dict[str, Any]]
    status: Mapped[str] = mapped_column(String(20))
    received_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    matched_instance_id: Mapped[int | None] = mapped_column(BigId)
    sender: Mapped[str] = mapped_column(String(100))


class MessageSubscription(Base):
    """An instance waiting for a message; ``correlation`` holds the values it can be matched on."""

    __tablename__ = "message_subscription"
    __table_args__ = (Index("ix_subscription_name", "name"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    name: Mapped[str] = mapped_column(String(200))
    correlation: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class User(Base):
    __tablename__ = "app_user"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    username: Mapped[str] = mapped_column(String(100), unique=True)  # never reused, rows never deleted
    full_name: Mapped[str] = mapped_column(String(200))
    password_hash: Mapped[str] = mapped_column(String(200))
    active: Mapped[bool] = mapped_column(default=True)
    failed_attempts: Mapped[int] = mapped_column(default=0)
    locked: Mapped[bool] = mapped_column(default=False)
    must_change_password: Mapped[bool] = mapped_column(default=False)
    password_changed_at: Mapped[datetime]
    created_at: Mapped[datetime]
    row_mac: Mapped[str | None] = mapped_column(String(64))  # engine.integrity: printed name, active

    roles: Mapped[list[UserRole]] = relationship(lazy="selectin", cascade="all, delete-orphan")

    @property
    def role_names(self) -> set[str]:
        return {r.role_name for r in self.roles}


class PasswordHistory(Base):
    """Every password a user had (argon2 hashes, newest last), so the last N cannot be chosen again."""

    __tablename__ = "password_history"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    set_at: Mapped[datetime]


class AuthSession(Base):
    """An API token or a browser session (``engine.sessions``): only the SHA-256 of its secret is kept."""

    __tablename__ = "auth_session"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), index=True)
    kind: Mapped[str] = mapped_column(String(10))  # api | browser
    secret_sha256: Mapped[str] = mapped_column(String(64))
    issued_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Role(Base):
    __tablename__ = "role"

    name: Mapped[str] = mapped_column(String(100), primary_key=True)
    description: Mapped[str] = mapped_column(String(300), default="")


class UserRole(Base):
    __tablename__ = "user_role"

    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"), primary_key=True)
    role_name: Mapped[str] = mapped_column(ForeignKey("role.name"), primary_key=True)
    row_mac: Mapped[str | None] = mapped_column(String(64))  # engine.integrity: who holds which role


class Signature(Base):
    """One electronic signature. Never updated, never deleted (database triggers refuse it)."""

    __tablename__ = "signature"

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("app_user.id"))
    printed_name: Mapped[str] = mapped_column(String(200))
    meaning: Mapped[str] = mapped_column(String(50))
    signed_at: Mapped[datetime]
    instance_id: Mapped[int] = mapped_column(ForeignKey("process_instance.id"), index=True)
    task_guid: Mapped[str] = mapped_column(String(36), index=True)
    record_hash: Mapped[str] = mapped_column(String(64))
    record: Mapped[dict[str, Any]]  # exactly what was signed


class AuditEvent(Base):
    """Append-only, hash-chained. Written in the same transaction as the change it records."""

    __tablename__ = "audit_event"
    __table_args__ = (
        Index("ix_audit_object", "object_type", "object_id"),
        Index("ix_audit_actor", "actor_id"),
        Index("ix_audit_action", "action"),
        Index("ix_audit_at", "at"),
    )

    seq: Mapped[int] = mapped_column(BigId, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    actor_id: Mapped[str] = mapped_column(String(100))
    actor_name: Mapped[str] = mapped_column(String(200))
    action: Mapped[str] = mapped_column(String(100))
    object_type: Mapped[str] = mapped_column(String(50))
    object_id: Mapped[str] = mapped_column(String(100))
    object_label: Mapped[str] = mapped_column(String(300))
    before: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    after: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    reason: Mapped[str | None] = mapped_column(Text)
    correlation_id: Mapped[str | None] = mapped_column(String(100))
    prev_hash: Mapped[str] = mapped_column(String(64))
    hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """The chain's head; locked by every appender so sequence and hashes never fork."""

    __tablename__ = "audit_head"

    id: Mapped[int] = mapped_column(primary_key=True)
    seq: Mapped[int] = mapped_column(BigId)
    hash: Mapped[str] = mapped_column(String(64))
    keyed_from: Mapped[int | None] = mapped_column(BigId)  # the audit.keyed event: MACs from here on


class MasterDataType(Base):
    """One version of a master-data record type: its JSON Schema text as shipped, and that text's hash."""

    __tablename__ = "masterdata_type"
    __table_args__ = (UniqueConstraint("name", "version"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    name: Mapped[str] = mapped_column(String(100))
    version: Mapped[int]
    title: Mapped[str] = mapped_column(String(200))
    schema_text: Mapped[str] = mapped_column(Text)
    schema_hash: Mapped[str] = mapped_column(String(64))
    loaded_at: Mapped[datetime]
    loaded_by: Mapped[str] = mapped_column(String(100))


class MasterDataRecord(Base):
    """A golden record: its type and key never change; its content lives in versions."""

    __tablename__ = "masterdata_record"
    __table_args__ = (UniqueConstraint("type_name", "key"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    type_name: Mapped[str] = mapped_column(String(100))
    key: Mapped[str] = mapped_column(String(200))
    title: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))


class MasterDataVersion(Base):
    """One version of a record. Data is frozen once the version leaves ``draft``.

    In force over ``[effective_from, effective_until)``; at most one version per record has status
    ``effective`` and at most one is open (``draft`` or ``in_review``): partial unique indexes say so.
    """

    __tablename__ = "masterdata_version"
    __table_args__ = (
        UniqueConstraint("record_id", "number"),
        Index("ix_masterdata_version_effective_from", "record_id", "effective_from"),
        Index("ux_masterdata_version_one_effective", "record_id", unique=True,
              sqlite_where=text("status = 'effective'"), postgresql_where=text("status = 'effective'")),
        Index("ux_masterdata_version_one_open", "record_id", unique=True,
              sqlite_where=text("status IN ('draft', 'in_review')"),
              postgresql_where=text("status IN ('draft', 'in_review')")),
    )

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_id: Mapped[int] = mapped_column(ForeignKey("masterdata_record.id"))
    number: Mapped[int]
    status: Mapped[str] = mapped_column(String(20))
    # the schema version it was checked by
    type_id: Mapped[int] = mapped_column(ForeignKey("masterdata_type.id"))
    data: Mapped[dict[str, Any]]
    content_hash: Mapped[str] = mapped_column(String(64))
    effective_from: Mapped[datetime | None]
    effective_until: Mapped[datetime | None]
    change_request_instance_id: Mapped[int | None] = mapped_column(BigId)
    created_at: Mapped[datetime]
    created_by: Mapped[str] = mapped_column(String(100))
    changed_at: Mapped[datetime]
    changed_by: Mapped[str] = mapped_column(String(100))

    record: Mapped[MasterDataRecord] = relationship(lazy="joined", innerjoin=True)


class RecordLock(Base):
    """A record closed by a disposition: the task whose model property ``record.lock`` named it locked it.

    While ``unlocked_at`` is None, no instance whose business key is ``record_key`` or begins with
    ``record_key/`` takes a step (``engine.runtime.record_locks``), except the instance that set it and
    the instances of a process whose start event declares ``record.reopen``; a task with ``record.unlock``
    ends it. Rows stay: they are the record's lock history.
    """

    __tablename__ = "record_lock"
    __table_args__ = (Index("ix_record_lock_key", "record_key", "unlocked_at"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    record_key: Mapped[str] = mapped_column(String(200))
    locked_at: Mapped[datetime]
    locked_by: Mapped[str] = mapped_column(String(100))
    holder_instance_id: Mapped[int] = mapped_column(BigId)
    unlocked_at: Mapped[datetime | None]
    unlocked_by: Mapped[str | None] = mapped_column(String(100))
    unlock_instance_id: Mapped[int | None] = mapped_column(BigId)


class TaskHistory(Base):
    """Finished tasks that left an instance's live task tree (``engine.spiff.history``), one row per step
    that removed any: ``tasks`` is JSON, ``[{"workflow": null | sub-workflow task id, "tasks": {id: task}}]``,
    each task in the stored state's own format under its parent at the time. Append-only (database
    triggers refuse UPDATE and DELETE) and sealed (``row_mac``: instance, time and text)."""

    __tablename__ = "task_history"
    __table_args__ = (Index("ix_task_history_instance", "instance_id", "id"),)

    id: Mapped[int] = mapped_column(BigId, primary_key=True)
    instance_id: Mapped[int] = mapped_column(BigId)
    recorded_at: Mapped[datetime]
    tasks: Mapped[str] = mapped_column(Text)
    row_mac: Mapped[str | None] = mapped_column(String(64))
