"""What a new version of a process bundle changes against another: BPMN elements and their properties, DMN
rules, form fields — each added, removed or changed — as a flat list of ``{path, before, after}`` like a
master-data diff (``engine.masterdata.diff``), so one page shows either side by side.

Paths: ``/bpmn/<element id>/<what>``, ``/dmn/<rule id>/<what>``, ``/form/<form id>/<field key>/<what>``; an
element, rule or field added or removed is one change at its own path (``before`` or ``after`` null).

``dropped_signatures`` is what lint refuses (``signature_dropped``): a user task of the old version that asked
for a signature (``signature.meaning``) or a four-eyes rule (``signature.distinctFrom``) and no longer does.
"""

from __future__ import annotations

import json
from typing import Any

from lxml import etree

from engine.definitions.bundle import Bundle
from engine.definitions.properties import split_list
from engine.spiff.parsing import BPMN_NS, NS, parse_documents

PROPERTIES = "./bpmn:extensionElements/spiffworkflow:properties/spiffworkflow:property"
SIGNATURE_PROPERTIES = ("signature.meaning", "signature.distinctFrom")
Facts = dict[str, dict[str, Any]]  # id -> {what: value}


def _local(node: etree._Element) -> str:
    return etree.QName(node).localname


def _bpmn_elements(root: etree._Element) -> Facts:
    found: Facts = {}
    for node in root.iter(f"{{{BPMN_NS}}}*"):
        if not node.get("id") or _local(node) in ("definitions", "extensionElements"):
            continue
        facts: dict[str, Any] = {"type": _local(node), "name": node.get("name")}
        facts.update({f"@{k}": v for k, v in node.attrib.items() if k not in ("id", "name")})
        for prop in node.findall(PROPERTIES, NS):
            facts[str(prop.get("name"))] = prop.get("value")
        for child in node:
            local = _local(child) if isinstance(child.tag, str) else ""
            if local in ("conditionExpression", "script", "timeDuration", "timeDate", "timeCycle"):
                facts[local] = (child.text or "").strip()
        for ext in node.findall("./bpmn:extensionElements/*", NS):
            local = _local(ext) if isinstance(ext.tag, str) else ""
            if local == "calledDecisionId":
                facts[local] = (ext.text or "").strip()
            elif local == "serviceTaskOperator":
                facts["operator"] = ext.get("id")
                for param in ext.iter("{*}parameter"):
                    facts[f"parameter:{param.get('id')}"] = param.get("value")
        found[str(node.get("id"))] = {k: v for k, v in facts.items() if v is not None}
    return found


def _dmn_rules(root: etree._Element) -> Facts:
    found: Facts = {}
    for table in root.iter("{*}decisionTable"):
        inputs = [i.findtext("{*}inputExpression/{*}text") or i.get("label")
                  for i in table.findall("{*}input")]
        outputs = [o.get("name") or o.get("label") for o in table.findall("{*}output")]
        found[f"{table.get('id')}"] = {"type": "decisionTable",
                                       "hitPolicy": table.get("hitPolicy") or "UNIQUE",
                                       "inputs": ", ".join(map(str, inputs)),
                                       "outputs": ", ".join(map(str, outputs))}
        for rule in table.findall("{*}rule"):
            facts: dict[str, Any] = {"type": "rule",
                                     "description": (rule.findtext("{*}description") or "").strip()}
            for name, entry in zip(inputs, rule.findall("{*}inputEntry"), strict=False):
                facts[f"when {name}"] = (entry.findtext("{*}text") or "").strip()
            for name, entry in zip(outputs, rule.findall("{*}outputEntry"), strict=False):
                facts[f"then {name}"] = (entry.findtext("{*}text") or "").strip()
            found[str(rule.get("id"))] = facts
    return found


def _form_fields(bundle: Bundle) -> Facts:
    found: Facts = {}
    for form_id, form in bundle.forms().items():
        stack = list(form.get("components") or [])
        while stack:
            component = stack.pop(0)
            stack.extend(component.get("components") or [])
            key = component.get("key") or component.get("id")
            if key:
                found[f"{form_id}/{key}"] = {k: (v if isinstance(v, str | int | float | bool) or v is None
                                                 else json.dumps(v, sort_keys=True))
                                             for k, v in component.items() if k not in ("id", "components")}
    return found


def facts_of(bundle: Bundle) -> dict[str, Facts]:
    """``{"bpmn": elements, "dmn": rules, "form": fields}`` of a bundle, each id → what it declares."""
    bpmn: Facts = {}
    dmn: Facts = {}
    for name, root in parse_documents(bundle).items():
        if name in bundle.of_kind("bpmn"):
            bpmn.update(_bpmn_elements(root))
        else:
            dmn.update(_dmn_rules(root))
    return {"bpmn": bpmn, "dmn": dmn, "form": _form_fields(bundle)}


def _label(facts: dict[str, Any]) -> str:
    return " ".join(str(p) for p in (facts.get("type"), facts.get("name") or facts.get("description")) if p)


def diff(before: Bundle | None, after: Bundle) -> dict[str, Any]:
    """``changes`` ([{path, before, after}]) and ``elements`` ({added, removed, changed}: BPMN element ids,
    what a diagram marks), ``dropped_signatures``. No ``before``: everything is added."""
    old = facts_of(before) if before is not None else {"bpmn": {}, "dmn": {}, "form": {}}
    new = facts_of(after)
    changes: list[dict[str, Any]] = []
    marked: dict[str, list[str]] = {"added": [], "removed": [], "changed": []}
    for part in ("bpmn", "dmn", "form"):
        for ident in sorted(old[part].keys() | new[part].keys()):
            was, now = old[part].get(ident), new[part].get(ident)
            path = f"/{part}/{ident}"
            if was is None or now is None:
                changes.append({"path": path, "before": _label(was) if was else None,
                                "after": _label(now) if now else None})
                if part == "bpmn":
                    marked["added" if was is None else "removed"].append(ident)
                continue
            moved = [{"path": f"{path}/{what}", "before": was.get(what), "after": now.get(what)}
                     for what in sorted(was.keys() | now.keys()) if was.get(what) != now.get(what)]
            changes += moved
            if moved and part == "bpmn":
                marked["changed"].append(ident)
    return {"changes": changes, "elements": marked,
            "dropped_signatures": dropped_signatures(old["bpmn"], new["bpmn"])}


def dropped_signatures(old: Facts, new: Facts) -> list[dict[str, Any]]:
    """Each signature meaning or four-eyes rule of an old user task that the new version no longer has."""
    dropped = []
    for ident, was in sorted(old.items()):
        now = new.get(ident) or {}
        for prop in SIGNATURE_PROPERTIES:
            missing = [v for v in split_list(was.get(prop)) if v not in split_list(now.get(prop))]
            if prop == "signature.meaning" and split_list(now.get(prop)):
                missing = []  # still signed (with fewer or other meanings): not a dropped signature
            if "all" in split_list(now.get(prop)):  # 'all' covers the initiator and every earlier signer
                missing = [m for m in missing if m == "related" or m.startswith(("variable:", "performer:"))]
            if missing:
                dropped.append({"element_id": ident, "name": was.get("name"), "property": prop,
                                "dropped": missing, "task_removed": ident not in new})
    return dropped
