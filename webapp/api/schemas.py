"""JSON Schemas (OpenAPI 3.1 dialect) of what the API accepts and returns.

Request schemas are self-contained: the same dicts validate request bodies (jsonschema) and
document them (components in the OpenAPI document).
"""

from __future__ import annotations

from typing import Any

from gmp.batch_exceptions import SEVERITIES

ID = {"type": "integer", "minimum": 1}
TIME = {"type": "string", "format": "date-time"}
TIME_OR_NULL = {"type": ["string", "null"], "format": "date-time"}
TEXT_OR_NULL = {"type": ["string", "null"]}
OBJECT = {"type": "object"}


def ref(name: str) -> dict[str, str]:
    return {"$ref": f"#/components/schemas/{name}"}


def listing(name: str) -> dict[str, Any]:
    return {"type": "array", "items": ref(name)}


def obj(properties: dict[str, Any], required: list[str] | None = None, **more: Any) -> dict[str, Any]:
    """An object schema; every property is required unless ``required`` names the ones that are."""
    return {"type": "object", "properties": properties,
            "required": list(properties) if required is None else required, **more}


REASON = {"type": "string", "minLength": 1, "maxLength": 2000, "pattern": r"\S",
          "description": "why (recorded in the audit trail); blank text is refused"}
REQUESTS: dict[str, dict[str, Any]] = {
    "TokenRequest": obj({"username": {"type": "string", "minLength": 1, "maxLength": 100},
                         "password": {"type": "string", "minLength": 1, "maxLength": 1000}}),
    "StartInstanceRequest": obj({"business_key": {"type": ["string", "null"], "maxLength": 200},
                                 "variables": OBJECT}, required=[]),
    "ReasonRequest": obj({"reason": REASON}),
    "CompleteTaskRequest": obj({
        "data": OBJECT,
        "signature": {"type": ["object", "null"],
                      "properties": {"username": {"type": "string"}, "password": {"type": "string"},
                                     "meaning": {"type": "string"},
                                     "record_sha256": {"type": "string", "pattern": "^[0-9a-fA-F]{64}$",
                                                       "description": "where the task signs a record "
                                                                      "(`signature.record`): the `sha256` "
                                                                      "of the record as it was shown"}}},
    }, required=[]),
    "ChangePasswordRequest": obj({"username": {"type": "string", "minLength": 1, "maxLength": 100},
                                  "old_password": {"type": "string", "minLength": 1, "maxLength": 1000},
                                  "new_password": {"type": "string", "minLength": 1, "maxLength": 1000}}),
    "RoleRequest": obj({"role": {"type": "string", "minLength": 1, "maxLength": 100},
                        "reason": REASON}),
    "NewRoleRequest": obj({"name": {"type": "string", "pattern": "^[a-z][a-z0-9_]{1,49}$",
                                    "description": "a safe identifier, as lanes name it"},
                           "description": {"type": "string", "maxLength": 300}, "reason": REASON},
                          required=["name", "reason"]),
    "MasterDataRecordRequest": obj({"key": {"type": "string",
                                            "pattern": r"^[A-Za-z_][A-Za-z0-9_.\-]{0,199}$"},
                                    "title": {"type": "string", "minLength": 1, "maxLength": 300},
                                    "data": OBJECT}, required=["key", "data"]),
    "MasterDataDraftRequest": obj({"data": OBJECT}, required=[]),
    "MasterDataDataRequest": obj({"data": OBJECT}),
    "MasterDataImportRequest": obj({"records": {"type": "array", "minItems": 1, "maxItems": 5000, "items": {
        "description": "{type, key, title, data}; each is checked by the engine, errors by JSON pointer"}}}),
    "MessageRequest": obj({"name": {"type": "string", "minLength": 1, "maxLength": 200},
                           # matched against a business key or a scalar variable: a value of another
                           # kind, or a key without a name, could never match (engine.runtime.messages)
                           "correlation_keys": {"type": "object",
                                                "additionalProperties": {"type": ["string", "number",
                                                                                  "boolean"]},
                                                "propertyNames": {"minLength": 1, "maxLength": 200,
                                                                  "pattern": r"\S"}},
                           "payload": OBJECT,
                           "ttl_seconds": {"type": ["integer", "null"], "minimum": 0, "maximum": 31_536_000}},
                          required=["name"]),
    "NewLotRequest": obj({"lot_id": {"type": "string", "pattern": r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,99}$"},
                          "material": {"type": "string", "minLength": 1, "maxLength": 50, "pattern": r"\S"},
                          "quantity": {"type": "number", "exclusiveMinimum": 0, "exclusiveMaximum": 1e12},
                          "uom": {"type": "string", "minLength": 1, "maxLength": 20, "pattern": r"\S"},
                          "expiry": {"type": "string", "format": "date"},
                          "retest": {"type": ["string", "null"], "format": "date"},
                          "supplier_lot": {"type": ["string", "null"], "minLength": 1, "maxLength": 100,
                                           "pattern": r"\S"}},
                         required=["lot_id", "material", "quantity", "uom", "expiry"],
                         additionalProperties=False),
}

RESPONSES: dict[str, dict[str, Any]] = {
    "Problem": obj({"type": {"type": "string"}, "title": {"type": "string"}, "status": {"type": "integer"},
                    "detail": {"type": "string"}, "code": {"type": "string"},
                    "errors": {"type": "object", "additionalProperties": {"type": "string"}}},
                   required=["type", "title", "status", "detail", "code"]),
    "Token": obj({"token": {"type": "string"}, "expires_at": TIME}),
    "ProcessDefinition": obj({"id": ID, "key": {"type": "string"}, "name": {"type": "string"},
                              "version": {"type": "integer"}, "status": {"type": "string"},
                              "created_at": TIME, "activated_at": TIME_OR_NULL,
                              "latest_active": {
                                  "type": "boolean",
                                  "description": "the version new instances of the key start on"},
                              "start_roles": {
                                  "type": "array", "items": {"type": "string"},
                                  "description": "who may start it (start.roles, else the start event's "
                                                 "lane, else admin; empty: only by message or timer)"}}),
    "Instance": obj({"id": ID, "process_key": {"type": "string"}, "version": {"type": "integer"},
                     "business_key": TEXT_OR_NULL, "status": {"type": "string"},
                     "status_reason": TEXT_OR_NULL, "initiator": {"type": "string"}, "started_at": TIME,
                     "ended_at": TIME_OR_NULL}),
    "InstancePage": obj({"items": listing("Instance"), "total": {"type": "integer", "minimum": 0}}),
    "Task": obj({"id": ID, "instance_id": ID, "element_id": {"type": "string"}, "name": {"type": "string"},
                 "lane": TEXT_OR_NULL, "candidate_roles": {"type": "array", "items": {"type": "string"}},
                 "assignee": TEXT_OR_NULL, "form_id": TEXT_OR_NULL, "instructions": TEXT_OR_NULL,
                 "signature_meaning": TEXT_OR_NULL, "state": {"type": "string"}, "due_at": TIME_OR_NULL,
                 "created_at": TIME, "completed_at": TIME_OR_NULL, "completed_by": TEXT_OR_NULL,
                 "data": {"type": ["object", "null"]},
                 "signatures": {**listing("Signature"), "description": "manifestations of the signatures on "
                                                                       "this task"},
                 "signed_record": {"type": ["object", "null"], "properties": {
                     "kind": {"type": "string"}, "key": {"type": "string"}, "sha256": {"type": "string"}},
                     "description": "GET /tasks/{id} of an open task whose signature covers a record (e.g. "
                                    "a batch's review and disposition): the record's kind, key and the "
                                    "`sha256` to send back as `signature.record_sha256`; else null"}},
                required=["id", "instance_id", "element_id", "name", "lane", "candidate_roles", "assignee",
                          "form_id", "instructions", "signature_meaning", "state", "due_at", "created_at",
                          "completed_at", "completed_by", "data", "signatures"]),
    "TaskForm": obj({"task_id": ID, "form_id": TEXT_OR_NULL,
                     "form": {"type": ["object", "null"], "description": "the form-js definition"}}),
    "Job": obj({"id": ID, "kind": {"type": "string"}, "element_id": TEXT_OR_NULL, "operation": TEXT_OR_NULL,
                "state": {"type": "string"}, "due_at": TIME, "attempts": {"type": "integer"},
                "max_attempts": {"type": "integer"}, "last_error": TEXT_OR_NULL}),
    "Incident": obj({"id": ID, "job_id": ID, "instance_id": {"type": ["integer", "null"]},
                     "element_id": TEXT_OR_NULL, "error": {"type": "string"}, "attempts": {"type": "integer"},
                     "created_at": TIME, "resolved_at": TIME_OR_NULL, "resolved_by": TEXT_OR_NULL,
                     "resolution_reason": TEXT_OR_NULL}),
    "HistoryStep": obj({"element_id": {"type": "string"}, "name": {"type": "string"},
                        "type": {"type": "string"}, "completed_at": TIME_OR_NULL}),
    "InstanceDetail": {"allOf": [ref("Instance"), obj({
        "variables": OBJECT, "tasks": listing("Task"), "history": listing("HistoryStep"),
        "jobs": listing("Job"), "incidents": listing("Incident"), "signatures": listing("Signature")})]},
    "MessageResult": obj({"status": {"type": "string", "enum": ["matched", "pending"]},
                          "instance_id": {"type": "integer"}, "message_id": {"type": "integer"}},
                         required=["status"]),
    "AuditEvent": obj({"seq": {"type": "integer"}, "at": TIME, "actor_id": {"type": "string"},
                       "actor_name": {"type": "string"}, "action": {"type": "string"},
                       "object_type": {"type": "string"}, "object_id": {"type": "string"},
                       "object_label": {"type": "string"}, "before": {"type": ["object", "null"]},
                       "after": {"type": ["object", "null"]}, "reason": TEXT_OR_NULL,
                       "correlation_id": TEXT_OR_NULL, "prev_hash": {"type": "string"},
                       "hash": {"type": "string"}}),
    "AuditReport": obj({"ok": {"type": "boolean"}, "checked": {"type": "integer"},
                        "first_broken": {"type": ["integer", "null"]}, "reason": TEXT_OR_NULL,
                        "table": {"type": "string", "description": "a sealed row changed outside gmpflow"},
                        "row_id": {"type": "string"}}, required=["ok", "checked", "first_broken", "reason"]),
    "Signature": obj({"id": ID, "instance_id": ID, "task_guid": {"type": "string"},
                      "username": {"type": "string"}, "printed_name": {"type": "string"},
                      "meaning": {"type": "string"},
                      "signed_at": {**TIME, "description": "UTC, with its zone offset"},
                      "record_hash": {"type": "string", "description": "SHA-256 of the canonical JSON of "
                                                                       "exactly what was signed"}}),
    "User": obj({"username": {"type": "string"}, "full_name": {"type": "string"},
                 "active": {"type": "boolean"}, "locked": {"type": "boolean"},
                 "failed_attempts": {"type": "integer"},
                 "must_change_password": {"type": "boolean"}, "password_changed_at": TIME,
                 "created_at": TIME, "roles": {"type": "array", "items": {"type": "string"}}}),
    "Role": obj({"name": {"type": "string"}, "description": {"type": "string"}}),
    "OneTimePassword": obj({"username": {"type": "string"}, "one_time_password": {"type": "string"}}),
    "Record": obj({"generated_at": TIME, "process": OBJECT, "instance": OBJECT,
                   "steps": {"type": "array", "items": OBJECT}, "history": {"type": "array", "items": OBJECT},
                   "signatures": listing("Signature"), "changed_after_entry": {"type": "boolean"},
                   "audit_trail": {"type": "array", "items": OBJECT}}),
    "BatchRecord": obj({
        "batch_id": {"type": "string"}, "generated_at": TIME, "order": OBJECT,
        "sop": {**OBJECT, "description": "key, version, content hash and late_signature_hours of the SOP "
                                         "version the batch ran on"},
        "execution": OBJECT, "steps": {"type": "array", "items": OBJECT},
        "deviations": {"type": "array", "items": OBJECT}, "corrections": {"type": "array", "items": OBJECT},
        "consumed": {"type": "array", "items": OBJECT}, "incidents": {"type": "array", "items": OBJECT},
        "facts": {"type": "object", "additionalProperties": {"type": "integer"},
                  "description": "entries per fact of the record (what release_exceptions.dmn decides on)"},
        "exceptions": {"type": "array", "items": obj({
            "kind": {"type": "string", "description": "named by the DMN rule that fired"},
            "severity": {"type": "string", "enum": list(SEVERITIES)},
            "blocking": {"type": "boolean", "description": "QA cannot release while it stands"},
            "fact": {"type": "string"}, "rule": {"type": "string"}, "why": {"type": "string"},
            "step": {"type": ["integer", "null"]}, "text": {"type": "string"}},
            required=["kind", "severity", "blocking", "rule", "text"]),
            "description": "what QA sees first, as release_exceptions.dmn decides it: a row per evidence"},
        "participants": {"type": "array", "items": {"type": "string"},
                         "description": "who performed, confirmed, verified a step or recorded the yield"},
        "release": OBJECT, "audit_trail": {"type": "array", "items": OBJECT},
        "disposition": {**OBJECT, "description": "`status` (in_production, under_review, released, "
                                                 "rejected, quarantined), `locked`, and `events`: every "
                                                 "disposition and reopen, oldest first (who, when, meaning, "
                                                 "reason)"},
        "sha256": {"type": "string", "description": "SHA-256 of the canonical JSON of the record without "
                                                    "`sha256`, `generated_at` and `audit_trail`; a QA "
                                                    "signature on the batch sends it back as "
                                                    "`signature.record_sha256`"}}),
    "MasterDataType": obj({"name": {"type": "string"}, "version": {"type": "integer"},
                           "title": {"type": "string"},
                           "schema_hash": {"type": "string",
                                           "description": "SHA-256 of the schema's canonical JSON"},
                           "loaded_at": TIME}),
    "MasterDataTypeDetail": {"allOf": [ref("MasterDataType"), obj({"schema": {
        **OBJECT, "description": "JSON Schema (draft 2020-12); `x-ref` names the type a value refers to"}})]},
    "MasterDataVersionSummary": obj({"number": {"type": "integer"}, "status": {"type": "string", "enum": [
        "draft", "in_review", "effective", "superseded", "obsolete"]}, "content_hash": {"type": "string"},
        "effective_from": TIME_OR_NULL, "effective_until": TIME_OR_NULL}),
    "MasterDataVersion": {"allOf": [ref("MasterDataVersionSummary"), obj({
        "id": ID, "type": {"type": "string"}, "key": {"type": "string"}, "data": OBJECT,
        "change_request_instance_id": {"type": ["integer", "null"]}, "created_at": TIME,
        "created_by": {"type": "string"}, "changed_at": TIME, "changed_by": {"type": "string"}})]},
    "MasterDataRecordSummary": obj({"id": ID, "type": {"type": "string"}, "key": {"type": "string"},
                                    "title": {"type": "string"}, "created_at": TIME,
                                    "created_by": {"type": "string"},
                                    "versions": listing("MasterDataVersionSummary")}),
    "MasterDataRecord": obj({"id": ID, "type": {"type": "string"}, "key": {"type": "string"},
                             "title": {"type": "string"}, "created_at": TIME,
                             "created_by": {"type": "string"},
                             "versions": listing("MasterDataVersion")}),
    "Lot": obj({"lot_id": {"type": "string"}, "material": {"type": "string"}, "quantity": {"type": "number"},
                "uom": {"type": "string"}, "available": {"type": "number", "minimum": 0},
                "expiry": {"type": "string", "format": "date"},
                "retest": {"type": ["string", "null"], "format": "date"}, "supplier_lot": TEXT_OR_NULL,
                "status": {"enum": ["quarantine", "released", "rejected", "expired"],
                           "description": "as read now: `expired` is a released lot past its expiry date"},
                "disposition_instance_id": {"type": ["integer", "null"]},
                "created_at": TIME, "created_by": {"type": "string"}}),
    "LotEvent": obj({"kind": {"enum": ["created", "status", "consumed", "produced"]}, "at": TIME,
                     "by": {"type": "string"},
                     "by_name": {"type": "string"}, "from_status": TEXT_OR_NULL, "to_status": TEXT_OR_NULL,
                     "quantity": {"type": ["number", "null"]}, "uom": TEXT_OR_NULL, "batch_id": TEXT_OR_NULL,
                     "instance_id": {"type": ["integer", "null"]}, "step": {"type": ["integer", "null"]},
                     "reason": TEXT_OR_NULL}),
    "EquipmentLogEntry": obj({"kind": {"enum": ["cleaned", "in_use", "released", "maintenance",
                                                "calibration"]},
                              "at": TIME, "by": {"type": "string"}, "by_name": {"type": "string"},
                              "batch_id": TEXT_OR_NULL, "product": TEXT_OR_NULL,
                              "step": {"type": ["integer", "null"]},
                              "instance_id": {"type": ["integer", "null"]},
                              "performed_by": TEXT_OR_NULL, "verified_by": TEXT_OR_NULL, "note": TEXT_OR_NULL,
                              "calibration_due": TEXT_OR_NULL, "status": TEXT_OR_NULL,
                              "record_version": {"type": "integer"}}, required=["kind", "at"]),
    "EquipmentLogbook": obj({"equipment_id": {"type": "string"},
                             "record": {"type": ["object", "null"],
                                        "description": "the master data in force"},
                             "state": {"enum": ["clean", "dirty", "in_use", "clean_hold_expired",
                                                "never_cleaned"]},
                             "batch_id": TEXT_OR_NULL, "product": TEXT_OR_NULL, "clean_until": TIME_OR_NULL,
                             "entries": listing("EquipmentLogEntry")},
                            required=["equipment_id", "record", "state", "batch_id", "entries"]),
    "LotWithHistory": {"allOf": [ref("Lot"), obj({"history": listing("LotEvent")})]},
    "Genealogy": obj({"root": {"type": "string"},
                      "nodes": {"type": "array", "items": obj({
                          "kind": {"enum": ["lot", "batch"]}, "id": {"type": "string"},
                          "material": TEXT_OR_NULL, "status": {"type": "string"}})},
                      "edges": {"type": "array", "items": obj({
                          "from": {"type": "string"}, "to": {"type": "string"},
                          "quantity": {"type": "number"}, "uom": TEXT_OR_NULL})}}),
    "MasterDataChange": obj({"path": {"type": "string", "description": "JSON pointer"},
                             "before": {"description": "null when absent"},
                             "after": {"description": "null when absent"}}),
}

SCHEMAS = {**REQUESTS, **RESPONSES}
