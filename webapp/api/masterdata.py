"""Master data: record types, records, versions, the version in force, diffs, drafts and imports.

Reads are open to every signed-in user; writes (drafts, submitting for review, imports) need the
``data_steward`` role. Nothing here makes a version effective: only the change-control process does.
"""

from __future__ import annotations

from typing import Any

from engine.masterdata.types import schema_of
from engine.store.models import MasterDataRecord, MasterDataType, MasterDataVersion
from webapp.api import api, body
from webapp.api.auth import engine, require_roles
from webapp.api.openapi import operation
from webapp.api.queries import Query, moment, query_args
from webapp.api.schemas import listing, ref
from webapp.jsonio import iso
from webapp.request_context import request_context

TAGS = ["masterdata"]
RECORD = "/masterdata/types/<key:type_name>/records/<key:key>"
STEWARD = "data_steward"


class EffectiveQuery(Query):
    at = moment(description="ISO 8601; without a zone, UTC")


def type_(row: MasterDataType, with_schema: bool = False) -> dict[str, Any]:
    shown = {"name": row.name, "version": row.version, "title": row.title, "schema_hash": row.schema_hash,
             "loaded_at": iso(row.loaded_at)}
    if with_schema:
        shown["schema"] = schema_of(row)
    return shown


def version(row: MasterDataVersion) -> dict[str, Any]:
    return {"id": row.id, "type": row.record.type_name, "key": row.record.key, "number": row.number,
            "status": row.status, "data": row.data, "content_hash": row.content_hash,
            "effective_from": iso(row.effective_from), "effective_until": iso(row.effective_until),
            "change_request_instance_id": row.change_request_instance_id, "created_at": iso(row.created_at),
            "created_by": row.created_by, "changed_at": iso(row.changed_at), "changed_by": row.changed_by}


def summary(row: MasterDataVersion) -> dict[str, Any]:
    return {"number": row.number, "status": row.status, "content_hash": row.content_hash,
            "effective_from": iso(row.effective_from), "effective_until": iso(row.effective_until)}


def record(row: MasterDataRecord, versions: list[MasterDataVersion], full: bool = False) -> dict[str, Any]:
    return {"id": row.id, "type": row.type_name, "key": row.key, "title": row.title,
            "created_at": iso(row.created_at), "created_by": row.created_by,
            "versions": [version(v) if full else summary(v) for v in versions]}


@api.get("/masterdata/types")
@operation("Master-data record types (the latest version of each)", tags=TAGS,
           response=listing("MasterDataType"))
def list_masterdata_types() -> Any:
    return [type_(t) for t in engine().masterdata.types()]


@api.get("/masterdata/types/<key:type_name>")
@operation("One record type with its JSON Schema", tags=TAGS, response=ref("MasterDataTypeDetail"))
def show_masterdata_type(type_name: str) -> Any:
    return type_(engine().masterdata.type(type_name), with_schema=True)


@api.get("/masterdata/types/<key:type_name>/records")
@operation("The records of a type, by key, each with its versions' numbers and statuses", tags=TAGS,
           response=listing("MasterDataRecordSummary"))
def list_masterdata_records(type_name: str) -> Any:
    return [record(r, versions) for r, versions in engine().masterdata.records(type_name)]


@api.post("/masterdata/types/<key:type_name>/records")
@operation("Create a record with version 1 as a draft (data steward)", tags=TAGS,
           body="MasterDataRecordRequest", response=ref("MasterDataVersion"), status=201,
           description="The data is checked against the type's schema and its references: a 400 "
                       "`masterdata_invalid` or `masterdata_unknown_reference` has `errors` by JSON pointer.")
@require_roles(STEWARD)
def create_masterdata_record(type_name: str) -> Any:
    data = body()
    created = engine().masterdata.create_record(request_context(), type_name, data["key"],
                                                data.get("title") or data["key"], data["data"])
    return version(created), 201


@api.get(RECORD)
@operation("A record with every version", tags=TAGS, response=ref("MasterDataRecord"))
def show_masterdata_record(type_name: str, key: str) -> Any:
    row, versions = engine().masterdata.record(type_name, key)
    return record(row, versions, full=True)


@api.post(f"{RECORD}/versions")
@operation("Start the record's next version as a draft (data steward)", tags=TAGS,
           body="MasterDataDraftRequest", response=ref("MasterDataVersion"), status=201,
           description="Without `data`, the draft copies the latest version. 409 "
                       "`masterdata_open_version_exists` while another version is a draft or in review.")
@require_roles(STEWARD)
def new_masterdata_draft(type_name: str, key: str) -> Any:
    data = body()
    return version(engine().masterdata.new_draft(request_context(), type_name, key, data.get("data"))), 201


@api.get(f"{RECORD}/versions/<id:number>")
@operation("One version of a record", tags=TAGS, response=ref("MasterDataVersion"))
def show_masterdata_version(type_name: str, key: str, number: int) -> Any:
    return version(engine().masterdata.version(type_name, key, number))


@api.put(f"{RECORD}/versions/<id:number>")
@operation("Replace a draft's data (data steward)", tags=TAGS, body="MasterDataDataRequest",
           response=ref("MasterDataVersion"),
           description="409 `masterdata_version_immutable` once the version is in review or later.")
@require_roles(STEWARD)
def update_masterdata_draft(type_name: str, key: str, number: int) -> Any:
    data = body()
    return version(engine().masterdata.update_draft(request_context(), type_name, key, number, data["data"]))


@api.post(f"{RECORD}/versions/<id:number>/submit")
@operation("Submit a draft for review: its data is frozen from now on (data steward)", tags=TAGS,
           response=ref("MasterDataVersion"))
@require_roles(STEWARD)
def submit_masterdata_version(type_name: str, key: str, number: int) -> Any:
    return version(engine().masterdata.submit(request_context(), type_name, key, number))


@api.get(f"{RECORD}/effective")
@operation("The version in force at a moment (default now)", tags=TAGS, response=ref("MasterDataVersion"),
           query=EffectiveQuery,
           description="404 `masterdata_not_effective` when no version was in force then.")
def effective_masterdata_version(type_name: str, key: str) -> Any:
    return version(engine().masterdata.effective_at(type_name, key, query_args().get("at")))


@api.get(f"{RECORD}/diff/<id:v1>/<id:v2>")
@operation("The changes from version v1 to version v2, by JSON pointer", tags=TAGS,
           response=listing("MasterDataChange"),
           description="`before` or `after` is null where the value is absent on that side.")
def diff_masterdata_versions(type_name: str, key: str, v1: int, v2: int) -> Any:
    return engine().masterdata.diff(type_name, key, v1, v2)


@api.post("/masterdata/import")
@operation("Import records as drafts, all or nothing (data steward)", tags=TAGS,
           body="MasterDataImportRequest", response=listing("MasterDataVersion"), status=201,
           description="A new key becomes a record with a first draft, a known key gets a new draft; "
                       "references may point to records of the same import. Any problem fails the whole "
                       "import (400 `import_failed`) with `errors` by JSON pointer into `records`, e.g. "
                       "`/3/data/lines/0/material`.")
@require_roles(STEWARD)
def import_masterdata() -> Any:
    data = body()
    return [version(v) for v in engine().masterdata.import_records(request_context(), data["records"])], 201
