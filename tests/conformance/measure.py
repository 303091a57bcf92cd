"""Measure gmpflow against SpiffWorkflow 3.2.0 alone on a corpus of public BPMN and DMN files, the way issue
18 measured it: for each BPMN file, does SpiffWorkflow parse it and run it to the end (every user task
completed with no data), does gmpflow lint it clean (deploy) and run it to the end through its service API
(the lanes' names created as roles first). For each DMN TCK model, does gmpflow lint it clean
and pass every test case.

    PYTHONPATH=$PWD python -m tests.conformance.measure CORPUS_DIR [--json OUT]

CORPUS_DIR holds the files in any folders (e.g. SpiffWorkflow's tests/SpiffWorkflow/*/data, the MIWG's
Reference/, the TCK's TestCases/). A BPMN file runs alone, with the DMN files of its folder its business rule
tasks name. The report lists every file SpiffWorkflow runs to the end and gmpflow does not, with the reason,
and every file gmpflow lints clean and then cannot run (lint should have said why)."""

from __future__ import annotations

import argparse
import json
import signal
import sys
import tempfile
from collections import Counter
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from lxml import etree

from engine.audit import Actor
from engine.clock import FrozenClock
from engine.definitions.bundle import Bundle
from engine.errors import GmpflowError
from engine.services import Gmpflow
from engine.store import Database
from engine.store.migrate import upgrade
from tests.conformance.runner import (
    chosen_process,
    complete_round_by_round,
    holder_of_every_role,
    plain,
    process_id,
    run_alone,
)

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
SECONDS_PER_FILE = 30
ADMIN = Actor("admin", "Ada Admin")


@dataclass
class Measured:
    path: str
    spiff_parses: bool = False
    spiff_status: str = "refused"       # completed | waiting | refused
    spiff_reason: str = ""
    lint_clean: bool = False
    gmpflow_status: str = "refused"
    gmpflow_stage: str = "lint"          # lint | start | run | end
    gmpflow_reason: str = ""
    same_data: bool | None = None


class TimedOut(Exception):
    pass


def _alarm(signum: int, frame: Any) -> None:
    raise TimedOut()


def companions(path: Path) -> list[Path]:
    """The DMN files of the BPMN file's folder holding a decision its business rule tasks name."""
    text = path.read_text(encoding="utf-8", errors="replace")
    if "businessRuleTask" not in text:
        return []
    found = []
    for dmn in sorted(path.parent.glob("*.dmn")):
        ids = {d.get("id") for d in etree.parse(str(dmn)).getroot() if etree.QName(d).localname == "decision"}
        if any(f'"{i}"' in text or f">{i}<" in text for i in ids if i):
            found.append(dmn)
    return found


def run_spiff(path: Path, m: Measured) -> dict[str, Any] | None:
    from SpiffWorkflow.bpmn import BpmnWorkflow
    from SpiffWorkflow.camunda.parser import CamundaParser
    from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
    try:
        parser = CamundaParser() if "camunda" in path.parts else SpiffBpmnParser(validator=VALIDATOR)
        parser.add_bpmn_files([str(path)])
        for dmn in companions(path):
            parser.add_dmn_files([str(dmn)])
        pid = process_id(path)
        workflow = BpmnWorkflow(parser.get_spec(pid), parser.get_subprocess_specs(pid))
        m.spiff_parses = True
        run_alone(workflow)
    except (Exception, TimedOut) as exc:
        m.spiff_reason = f"{type(exc).__name__}: {str(exc)[:160]}"
        return None
    if not workflow.is_completed():
        m.spiff_status = "waiting"
        return None
    m.spiff_status = "completed"
    return plain(dict((workflow.last_task or workflow.task_tree).data))


def run_gmpflow(engine: Gmpflow, path: Path, m: Measured) -> dict[str, Any] | None:
    person = holder_of_every_role(engine, ADMIN, path)
    files = {p.name: p.read_text(encoding="utf-8") for p in [path, *companions(path)]}
    try:
        dep, _ = engine.deploy(ADMIN, bundle=Bundle(files), activate=True, process=chosen_process(path))
    except GmpflowError as exc:
        problems = exc.context.get("problems") or []
        first = problems[0] if problems else {"code": exc.code, "message": str(exc)}
        m.gmpflow_reason = f"{first.get('code')}: {str(first.get('message'))[:160]}"
        return None
    except (Exception, TimedOut) as exc:
        m.gmpflow_stage, m.gmpflow_reason = "lint", f"FAULT {type(exc).__name__}: {str(exc)[:160]}"
        return None
    m.lint_clean, m.gmpflow_stage = True, "start"
    try:
        instance = engine.start_instance(person, dep.key, path.stem, {})
        m.gmpflow_stage = "run"
        complete_round_by_round(engine, person, instance.id)
        detail = engine.instance_detail(instance.id)
    except GmpflowError as exc:
        problems = exc.context.get("problems") or []
        m.gmpflow_reason = f"{problems[0]['code'] if problems else exc.code}: {str(exc)[:160]}"
        return None
    except (Exception, TimedOut) as exc:
        m.gmpflow_reason = f"FAULT {type(exc).__name__}: {str(exc)[:160]}"
        return None
    m.gmpflow_stage = "end"
    status = detail["instance"].status
    if status != "completed":
        m.gmpflow_status = "waiting"
        m.gmpflow_reason = f"{status}: " + ", ".join(
            f"{i.get('code', '')} {i.get('message', '')}"[:120] for i in detail.get("incidents", []) or [])
        return None
    m.gmpflow_status = "completed"
    return plain(detail["variables"])


def measure_bpmn(engine: Gmpflow, path: Path, root: Path) -> Measured:
    m = Measured(str(path.relative_to(root)))
    signal.alarm(SECONDS_PER_FILE)
    try:
        theirs = run_spiff(path, m)
    finally:
        signal.alarm(0)
    signal.alarm(SECONDS_PER_FILE)
    try:
        ours = run_gmpflow(engine, path, m)
    finally:
        signal.alarm(0)
    if ours is not None and theirs is not None:
        m.same_data = ours == theirs
    return m


def measure_tck(engine: Gmpflow, folder: Path, root: Path) -> dict[str, Any]:
    from tests.dmn_tck_support import cases, decision_ids_by_name
    from tests.test_dmn_tck import json_value, same_as_tck
    found: dict[str, Any] = {"path": str(folder.relative_to(root)), "lint_clean": False, "cases": 0,
                             "passed": 0, "reason": ""}
    models = sorted(folder.glob("*.dmn"))
    try:
        all_cases = cases(folder)
    except Exception as exc:  # a test file the reader does not understand
        found["reason"] = f"cases unread: {exc}"
        return found
    found["cases"] = len(all_cases)
    signal.alarm(SECONDS_PER_FILE * 2)
    try:
        deployed = {}
        for model in models:
            dep, _ = engine.deploy(ADMIN, [model], activate=True)
            deployed[model.name] = (dep.key, decision_ids_by_name(model.read_bytes()))
        found["lint_clean"] = True
        for case in all_cases:
            if case.model not in deployed:
                continue
            key, ids = deployed[case.model]
            try:
                inputs = json_value(case.inputs)
                ok = all(same_as_tck(case.folder, engine.evaluate_decision(key, inputs, ids[name])["value"],
                                     want) for name, want in case.expected.items())
            except (GmpflowError, KeyError) as exc:
                ok, found["reason"] = False, f"{case.case_id}: {type(exc).__name__} {str(exc)[:120]}"
            found["passed"] += ok
    except GmpflowError as exc:
        problems = exc.context.get("problems") or []
        found["reason"] = f"{problems[0]['code']}: {problems[0]['message'][:140]}" if problems else exc.code
    except (Exception, TimedOut) as exc:
        found["reason"] = f"FAULT {type(exc).__name__}: {str(exc)[:140]}"
    finally:
        signal.alarm(0)
    return found


def fresh_engine(folder: Path) -> Gmpflow:
    database = Database(f"sqlite:///{folder / 'gmpflow.db'}")
    upgrade(database)
    engine = Gmpflow(database, FrozenClock(), change_control="off")
    engine.record_start()
    return engine


def report(bpmn: list[Measured], tck: list[dict[str, Any]]) -> str:
    lines = [f"BPMN files: {len(bpmn)}",
             f"  SpiffWorkflow alone parses {sum(m.spiff_parses for m in bpmn)}, "
             f"runs to the end {sum(m.spiff_status == 'completed' for m in bpmn)}",
             f"  gmpflow lints clean {sum(m.lint_clean for m in bpmn)}, "
             f"runs to the end {sum(m.gmpflow_status == 'completed' for m in bpmn)}",
             f"  both run to the end {sum(m.same_data is not None for m in bpmn)}, "
             f"with different end data {sum(m.same_data is False for m in bpmn)}"]
    lines.append("SpiffWorkflow runs to the end, gmpflow does not:")
    for m in bpmn:
        if m.spiff_status == "completed" and m.gmpflow_status != "completed":
            lines.append(f"  {m.path} [{m.gmpflow_stage}] {m.gmpflow_reason}")
    lines.append("gmpflow lints clean, then cannot run it (lint should have said why):")
    for m in bpmn:
        if m.lint_clean and m.gmpflow_stage != "end" or "FAULT" in m.gmpflow_reason:
            lines.append(f"  {m.path} [{m.gmpflow_stage}] {m.gmpflow_reason}")
    for m in bpmn:
        if m.same_data is False:
            lines.append(f"  different end data: {m.path}")
    if tck:
        full = [t for t in tck if t["lint_clean"] and t["cases"] and t["passed"] == t["cases"]]
        lines.append(f"DMN TCK models: {len(tck)}; gmpflow lints clean {sum(t['lint_clean'] for t in tck)}, "
                     f"passes every case of {len(full)}; cases {sum(t['passed'] for t in tck)}"
                     f"/{sum(t['cases'] for t in tck)}")
        lines.append("DMN TCK models linted clean with a failing case (lint should have refused):")
        lines += [f"  {t['path']} {t['passed']}/{t['cases']} {t['reason']}" for t in tck
                  if t["lint_clean"] and t["passed"] < t["cases"]]
        reasons = Counter(t["reason"].split(":")[0] + ": " + t["reason"].split(":")[1][:50]
                          for t in tck if not t["lint_clean"] and ":" in t["reason"])
        lines.append("DMN TCK refusals at lint: " + "; ".join(f"{n} × {r}" for r, n in reasons.most_common()))
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("corpus", type=Path)
    parser.add_argument("--json", type=Path, help="write every file's measurements here")
    parser.add_argument("--only", default="", help="measure only paths containing this text")
    args = parser.parse_args(argv)
    signal.signal(signal.SIGALRM, _alarm)
    root = args.corpus.resolve()
    with tempfile.TemporaryDirectory() as folder:
        engine = fresh_engine(Path(folder))
        bpmn = [measure_bpmn(engine, p, root) for p in sorted(root.rglob("*.bpmn")) if args.only in str(p)]
        # the TCK's non-compliant/ folder holds models and test files that break the TCK's own rules (inputs
        # without their types): no compliance level, not measured
        tck_folders = sorted({p.parent for p in root.rglob("*-test-01.xml")
                              if "non-compliant" not in p.parts})
        tck = [measure_tck(engine, f, root) for f in tck_folders if args.only in str(f)]
        engine.db.dispose()
    print(report(bpmn, tck))
    if args.json:
        args.json.write_text(json.dumps({"bpmn": [asdict(m) for m in bpmn], "tck": tck}, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
