"""The master-data services, reached as ``Gmpflow.masterdata``: one unit of work (or read) per method."""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from pathlib import Path
from typing import Any

from engine.audit import Actor
from engine.clock import Clock
from engine.errors import NotFound
from engine.masterdata import effective, importer, records, types
from engine.masterdata.diff import diff
from engine.request_context import Caller, as_request
from engine.states import MasterDataStatus
from engine.store import Database
from engine.store.models import MasterDataRecord, MasterDataType, MasterDataVersion


class MasterData:
    def __init__(self, db: Database, clock: Clock, change_control: Callable[[], str],
                 folder: Callable[[], Path]) -> None:
        """``change_control``: the engine's mode in force; ``folder``: the configured master-data folder."""
        self.db, self.clock, self._change_control, self._folder = db, clock, change_control, folder

    # -- types --------------------------------------------------------------------------------------------
    def load_types(self, actor: Actor, path: Path | None = None) -> list[tuple[MasterDataType, bool]]:
        """Store the folder's types (default: the configured one); a changed schema becomes a new type
        version (audited)."""
        with self.db.unit_of_work() as session:
            return types.load(session, self.clock, actor, path or self._folder())

    def types(self) -> list[MasterDataType]:
        """The latest version of every type."""
        with self.db.read() as session:
            return types.list_current(session)

    def type(self, name: str) -> MasterDataType:
        with self.db.read() as session:
            return types.current(session, name)

    # -- reads --------------------------------------------------------------------------------------------
    def records(self, type_name: str) -> list[tuple[MasterDataRecord, list[MasterDataVersion]]]:
        with self.db.read() as session:
            return records.list_records(session, type_name)

    def record(self, type_name: str, key: str) -> tuple[MasterDataRecord, list[MasterDataVersion]]:
        with self.db.read() as session:
            record = records.get_record(session, type_name, key)
            return record, records.versions_of(session, record.id)

    def version(self, type_name: str, key: str, number: int) -> MasterDataVersion:
        with self.db.read() as session:
            return records.get_version(session, type_name, key, number)

    def effective_at(self, type_name: str, key: str, at: datetime | None = None) -> MasterDataVersion:
        """The version in force at ``at`` (default now); NotFound ``masterdata_not_effective`` if none was."""
        moment = at or self.clock.now()
        with self.db.read() as session:
            version = effective.effective_at(session, type_name, key, moment)
            if version is None:
                records.get_record(session, type_name, key)  # an unknown record or type says so
                raise NotFound(f"No version of {type_name} '{key}' was effective at {moment.isoformat()}.",
                               code="masterdata_not_effective")
            return version

    def diff(self, type_name: str, key: str, number_a: int, number_b: int) -> list[dict[str, Any]]:
        """``[{path, before, after}]`` from version ``number_a`` to version ``number_b``."""
        with self.db.read() as session:
            before = records.get_version(session, type_name, key, number_a)
            after = records.get_version(session, type_name, key, number_b)
            return diff(before.data, after.data)

    def record_view(self, type_name: str, key: str) -> dict[str, Any]:
        """A record for a person's screen: its ``type`` (latest version) and ``schema``, the ``record``,
        its ``versions`` (oldest first), the ``effective`` one and the ``open`` one (draft or in review)."""
        with self.db.read() as session:
            type_row = types.current(session, type_name)
            record = records.get_record(session, type_name, key)
            versions = records.versions_of(session, record.id)
        return {"type": type_row, "schema": types.schema_of(type_row), "record": record, "versions": versions,
                "effective": next((v for v in versions if v.status == MasterDataStatus.EFFECTIVE), None),
                "open": next((v for v in versions if v.status in (MasterDataStatus.DRAFT,
                                                                   MasterDataStatus.IN_REVIEW)), None)}

    # -- writes -------------------------------------------------------------------------------------------
    # each for the caller's request (``as_request``): its rows and audit events carry the request's actor,
    # time (``RequestContext.clock``, stopped at it), reason and correlation id
    def save_draft(self, caller: Caller, type_name: str, key: str, data: Any) -> MasterDataVersion:
        """Replace the record's open draft with ``data``, or start the next version as a draft with it.
        Raises ValidationFailed with per-field errors (JSON pointers) and stores nothing then."""
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            record = records.get_record(session, type_name, key)
            draft = next((v for v in records.versions_of(session, record.id)
                          if v.status == MasterDataStatus.DRAFT), None)
            if draft is not None:
                return records.update_draft(session, context.clock, context.actor, type_name, key,
                                            draft.number, data, reason=context.reason)
            return records.new_draft(session, context.clock, context.actor, type_name, key, data,
                                     reason=context.reason)

    def create_record(self, caller: Caller, type_name: str, key: str, title: str,
                      data: Any) -> MasterDataVersion:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return records.create_record(session, context.clock, context.actor, type_name, key, title, data,
                                         reason=context.reason)

    def new_draft(self, caller: Caller, type_name: str, key: str, data: Any = None) -> MasterDataVersion:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return records.new_draft(session, context.clock, context.actor, type_name, key, data,
                                     reason=context.reason)

    def update_draft(self, caller: Caller, type_name: str, key: str, number: int,
                     data: Any) -> MasterDataVersion:
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return records.update_draft(session, context.clock, context.actor, type_name, key, number, data,
                                        reason=context.reason)

    def submit(self, caller: Caller, type_name: str, key: str, number: int) -> MasterDataVersion:
        """Submit a draft for review."""
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return records.submit(session, context.clock, context.actor, type_name, key, number,
                                  reason=context.reason)

    def import_records(self, caller: Caller, items: Any) -> list[MasterDataVersion]:
        """Every record of the file in one unit of work: all created at the request's time, or none."""
        context = as_request(caller, self.clock)
        with self.db.unit_of_work(context.correlation_id) as session:
            return importer.import_records(session, context.clock, context.actor, items,
                                           reason=context.reason)

    def make_effective(self, actor: Actor, version_id: int, effective_from: datetime | None,
                       change_request_instance_id: int | None) -> MasterDataVersion:
        """For the change-control process's service task (see ``effective.make_effective``)."""
        with self.db.unit_of_work() as session:
            return effective.make_effective(session, self.clock, actor, version_id, effective_from,
                                            change_request_instance_id, change_control=self._change_control())
