"""Review by exception: the facts of a batch record, and which of them are exceptions (a model decides).

Python only gathers facts: each fact in ``FACTS`` is the list of the record's entries that are its evidence
(the deviations still open, the values outside their limits...). The model
``processes/batch_release/release_exceptions.dmn`` sees how many entries each fact has
(``summary['facts'][name]``) and decides, rule by rule (COLLECT), the exception's kind, its severity
(``blocking``: QA cannot release while it stands; ``major``; ``minor``) and which fact is its evidence. So a
new fact is one line in ``FACTS`` (or, for a decision someone signs, an ``exception.fact`` property on the
task that records it: ``gmp.batch_flags``); a new kind of exception, or another severity, is an edit of the
DMN.

The decision evaluated is that of the batch's release deployment (its latest ``batch_release`` instance,
else the active version): the record shows what that release decided, with the rule that fired and why.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date, datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from engine import decisions
from engine.states import DeploymentStatus
from engine.store.models import Deployment, ProcessInstance
from gmp import batch_yield

RELEASE_PROCESS = "batch_release"
DECISION_TASK = "classify"  # the business-rule task of batch_release that calls release_exceptions
SEVERITIES = ("blocking", "major", "minor")
Entry = dict[str, Any]


def _deviation(d: Entry) -> Entry:
    return {"step": d["step"], "id": d["id"],
            "text": f"Deviation {d['id']} ({d['state']}): {d['description']}"}


def _per_step(record: Entry, entries: Callable[[Entry], list[Entry]]) -> list[Entry]:
    return [{"step": step["number"], **entry} for step in record["steps"] for entry in entries(step)]


def _out_of_limit(step: Entry) -> list[Entry]:
    return [{"parameter": p["name"], "text": f"{p['name']} = {p['value']} {p['unit']} outside "
                                             f"{p['low']}–{p['high']} {p['unit']}"}
            for p in step["parameters"] if p["out_of_limit"]]


def _corrections(step: Entry) -> list[Entry]:
    return [{"parameter": c["name"],
             "text": f"{c['name']} corrected from {c['old_value']} to {c['new_value']} "
                     f"by {c['by_name'] or c['by']}: {c['reason']}"}
            for c in step["corrections"]]


def _late_signatures(record: Entry) -> list[Entry]:
    allowed = record["sop"].get("late_signature_hours")
    return [{"step": s["number"],
             "text": f"step {s['number']} was signed {s['signing_delay_hours']:g} h after it "
                     f"was opened (the SOP allows {allowed:g} h)"}
            for s in record["steps"] if s["signed_late"]]


def _calibration_lapses(record: Entry) -> list[Entry]:
    ends = [s["performed"]["at"] for s in record["steps"] if s.get("performed")]
    if not ends:
        return []
    batch_end = datetime.fromisoformat(max(ends)).date()
    found = []
    for step in record["steps"]:
        equipment = step.get("equipment") or {}
        due = equipment.get("calibration_due")
        if due and date.fromisoformat(due) < batch_end:
            found.append({"step": step["number"], "equipment": equipment.get("id"),
                          "text": f"the calibration of {equipment.get('id')} lapsed on {due}, "
                                  "during the batch"})
    return found


def _refused_attempts(step: Entry) -> list[Entry]:
    """Entries refused before the signature (a lot, the equipment, a qualification: ``refused_attempts``) and
    performed steps the equipment check sent back after it (``equipment_refusals``)."""
    before = [{"code": a["code"],
               "text": f"step {step['number']}: an entry by {a['by_name'] or a['by']} at {a['at']} was "
                       f"refused before signing ({a['code']}): {a['message']}"}
              for a in step.get("refused_attempts") or []]
    after = [{"code": r.get("code"), "equipment": r.get("equipment_id"),
              "text": f"step {step['number']}: refused attempt: {r.get('reason')}"}
             for r in step.get("equipment_refusals") or []]
    return before + after


def _yield_entries(record: Entry, kind: str) -> list[Entry]:
    calculated = {"yield": record["yield"], "reconciliation": record["reconciliation"]}
    return [{k: v for k, v in e.items() if k != "kind"} for e in batch_yield.exceptions(calculated)
            if e["kind"] == kind]


# fact name -> the record's entries that are its evidence. One line per fact; the DMN decides the rest.
FACTS: dict[str, Callable[[Entry], list[Entry]]] = {
    "open_deviations": lambda r: [_deviation(d) for d in r["deviations"] if d["state"] != "closed"],
    "closed_deviations": lambda r: [_deviation(d) for d in r["deviations"] if d["state"] == "closed"],
    "out_of_limit_values": lambda r: _per_step(r, _out_of_limit),
    "corrections": lambda r: _per_step(r, _corrections),
    "late_signatures": _late_signatures,
    "calibration_lapses": _calibration_lapses,
    "unresolved_incidents": lambda r: [{"step": None, "id": i["id"], "text": f"incident {i['id']} at "
                                        f"{i['element_id']} ({i['where']}): {i['error']}"}
                                       for i in r["incidents"] if i["resolved_at"] is None],
    "refused_attempts": lambda r: _per_step(r, _refused_attempts),
    "yield_out_of_limits": lambda r: _yield_entries(r, "yield_out_of_limits"),
    "reconciliation_out_of_tolerance": lambda r: _yield_entries(r, "reconciliation_out_of_tolerance"),
}


# facts raised by the models' ``exception.fact`` (gmp.batch_flags), always counted (0 when none is flagged)
FLAGGED = ("overrides", "open_capas")


def evidence(record: Entry) -> dict[str, list[Entry]]:
    """Every fact of ``FACTS``, and every fact a model flags on a completed task (``gmp.batch_flags``: e.g.
    ``overrides``, ``open_capas``), each with its entries; a flagged fact no task raised has none."""
    found = {name: gather(record) for name, gather in FACTS.items()}
    for name in FLAGGED:
        found.setdefault(name, [])
    for name, entries in (record.get("flagged") or {}).items():
        found[name] = [*found.get(name, []), *entries]
    return found


def counts(found: dict[str, list[Entry]]) -> dict[str, int]:
    """What the DMN sees: how many entries each fact has."""
    return {name: len(entries) for name, entries in found.items()}


def release_deployment(session: Session, batch_id: str) -> int | None:
    """The deployment whose decision applies: the batch's latest release, else the active release version."""
    latest = session.scalar(select(ProcessInstance.deployment_id).where(
        ProcessInstance.process_key == RELEASE_PROCESS, ProcessInstance.business_key == batch_id)
        .order_by(ProcessInstance.id.desc()).limit(1))
    if latest is not None:
        return int(latest)
    active = session.scalar(select(Deployment.id).where(Deployment.key == RELEASE_PROCESS,
                                                        Deployment.status == DeploymentStatus.ACTIVE)
                            .order_by(Deployment.version.desc()).limit(1))
    return int(active) if active is not None else None


def decide(session: Session, runtime: Any, batch_id: str, found: dict[str, list[Entry]]) -> list[Entry]:
    """The exceptions: for each rule of the DMN that fired, one row per entry of its evidence fact (one row
    without a step when the fact has no entries, e.g. a rule on a number), with the rule and its reason."""
    deployment_id = release_deployment(session, batch_id)
    if deployment_id is None:  # no release process deployed: nothing decides, nothing is claimed
        return []
    parsed = runtime.specs.get_by_id(session, deployment_id)
    hits = decisions.evaluate(parsed, DECISION_TASK, {"summary": {"facts": counts(found)}},
                              runtime.script_engine)
    rows: list[Entry] = []
    for hit in hits:
        kind = str(hit.outputs.get("exception_kinds"))
        severity = str(hit.outputs.get("exception_severities") or "major")
        fact = str(hit.outputs.get("exception_evidence") or "")
        decided = {"kind": kind, "severity": severity, "blocking": severity == "blocking", "fact": fact,
                   "rule": hit.rule_id, "why": hit.description}
        entries = found.get(fact) or [{"step": None, "text": hit.description}]
        rows += [{"step": None, **entry, **decided} for entry in entries]
    return rows
