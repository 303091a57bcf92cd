"""Every approver of a change control sees, on the task page, what the decision is about: the change side by
side with the changed fields highlighted, the reason, the risk class with the rule of classify_change.dmn that
decided it, and the impact assessment; for a process change, both diagrams with what was added, removed or
changed marked (bpmn-js, no inline script: the page fails on any CSP violation)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tests.conftest import ADMIN, ROOT
from tests.web.conftest import Live, login, shot

RECIPE = {"product": "P-WEB", "description": "Granulation", "steps": [{
    "number": 1, "instruction": "Granulate the blend.",
    "parameters": [{"name": "impeller speed", "unit": "rpm", "target": 300, "low": 250, "high": 350,
                    "critical": True},
                   {"name": "mixing time", "unit": "min", "target": 5, "low": 4, "high": 6,
                    "critical": False}]}]}


def run_jobs(live: Live) -> None:
    while live.engine.run_jobs_once():
        pass


def complete(live: Live, who: str, instance_id: int, element_id: str, data: dict[str, Any]) -> None:
    task = live.task_of(instance_id, element_id, who)
    live.engine.complete_task(live.engine.principal(who), task.id, data)
    run_jobs(live)


def recipe_change_request(live: Live) -> int:
    """Dana (data steward) proposes a faster impeller (a critical parameter), requests the change and
    assesses its impact: the approvals are open."""
    engine, dana = live.engine, live.engine.principal("dana").actor
    engine.masterdata.load_types(ADMIN)
    for type_name, key, data in (("product", "P-WEB", {"part_number": "P-WEB", "description": "Tablet",
                                                        "unit": "pcs"}), ("recipe", "R-WEB", RECIPE)):
        version = engine.masterdata.create_record(ADMIN, type_name, key, key, data)
        engine.masterdata.submit(ADMIN, type_name, key, 1)
        engine.masterdata.make_effective(ADMIN, version.id, None, None)
    faster = {**RECIPE, "steps": [{**RECIPE["steps"][0], "parameters": [
        {**RECIPE["steps"][0]["parameters"][0], "target": 320}, RECIPE["steps"][0]["parameters"][1]]}]}
    draft = engine.masterdata.new_draft(dana, "recipe", "R-WEB", faster)
    engine.masterdata.submit(dana, "recipe", "R-WEB", draft.number)
    request = {"record_type": "recipe", "record_key": "R-WEB", "version_number": draft.number,
               "reason": "Faster granulation after the impeller upgrade.", "product_impact": "indirect",
               "effective_date": "2026-01-05"}
    cr = live.start("change_control", "", "dana", subject_kind="masterdata", **request)
    complete(live, "dana", cr, "request_masterdata", request)
    complete(live, "dana", cr, "assess_impact", {"impacted_products": "P-WEB tablets", "open_orders": "none",
                                                 "training_needed": True, "validation_needed": False,
                                                 "impact_comment": "operators briefed on the new speed"})
    return cr


def test_each_approver_of_a_recipe_change_sees_the_diff_reason_risk_and_impact(page: Any, live: Live) -> None:
    cr = recipe_change_request(live)
    for who, element in (("quinn", "approve_qa"), ("sam", "approve_supervisor"), ("pete", "approve_owner")):
        task = live.task_of(cr, element, who)  # pete: the recipe type's owner role (process_owner)
        login(page, live, who)
        page.goto(f"{live.url}/tasks/{task.id}")
        changed = page.locator("#change-diff tr[data-path='/steps/0/parameters/0/target']")
        assert changed.locator("td.before").inner_text().strip() == "300"
        assert changed.locator("td.after").inner_text().strip() == "320"
        assert page.locator("#change-diff tr.changed").count() == 1  # only what changed is listed
        assert "Faster granulation after the impeller upgrade." in page.locator("#change-reason").inner_text()
        assert "critical" in page.locator("#change-risk").inner_text()
        assert "critical process parameter" in page.locator("[data-rule=r_critical_parameter]").inner_text()
        assert "operators briefed" in page.locator("#change-impact").inner_text()
        shot(page, f"change-review-{who}")
        page.context.clear_cookies()


def test_an_approver_of_a_process_change_sees_both_diagrams_with_the_changes_marked(
        page: Any, live: Live, tmp_path: Path) -> None:
    demo = ROOT / "gmp" / "processes" / "demo_approval"
    (tmp_path / "v2").mkdir()
    (tmp_path / "v2" / "demo_approval.bpmn").write_text((demo / "demo_approval.bpmn").read_text().replace(
        'name="Approve the request"', 'name="Approve the request (QA)"'))
    draft, _ = live.engine.deploy(ADMIN, [tmp_path / "v2"], activate=False)
    request = {"deployment_id": draft.id, "reason": "Clearer task name.", "product_impact": "none",
               "effective_date": "2026-01-05"}
    cr = live.start("change_control", "", "pete", subject_kind="deployment", **request)
    complete(live, "pete", cr, "request_deployment", request)
    complete(live, "dana", cr, "assess_impact", {"impacted_products": "none", "open_orders": "none",
                                                 "training_needed": False, "validation_needed": False})
    task = live.task_of(cr, "approve_qa", "quinn")
    login(page, live, "quinn")
    page.goto(f"{live.url}/tasks/{task.id}")
    page.wait_for_selector("#diagram-before[data-rendered=true]")
    page.wait_for_selector("#diagram-after[data-rendered=true]")
    assert page.locator("#diagram-after .gmp-changed").count() >= 1
    assert page.locator("#diagram-before .gmp-changed").count() >= 1
    name_change = page.locator("#change-diff tr.changed[data-path$='/name']")
    assert "Approve the request (QA)" in name_change.locator("td.after").inner_text()
    shot(page, "change-review-process-diagram-diff")


def test_an_approver_of_a_new_process_sees_its_whole_diagram_marked_as_added(page: Any, live: Live) -> None:
    draft, _ = live.engine.deploy(ADMIN, [ROOT / "tests" / "bpmn" / "web_line_clearance"], activate=False)
    request = {"deployment_id": draft.id, "reason": "Line clearance, recorded.", "product_impact": "none",
               "effective_date": "2026-01-05"}
    cr = live.start("change_control", "", "pete", subject_kind="deployment", **request)
    complete(live, "pete", cr, "request_deployment", request)
    complete(live, "dana", cr, "assess_impact", {"impacted_products": "none", "open_orders": "none",
                                                 "training_needed": False, "validation_needed": False})
    login(page, live, "quinn")
    page.goto(f"{live.url}/tasks/{live.task_of(cr, 'approve_qa', 'quinn').id}")
    # the diff marks ids the diagram does not draw (the lane set, the process in its pool): skipped
    after = page.locator("#diagram-after[data-rendered=true]")
    assert after.locator(".djs-element.gmp-added[data-element-id=inspect]").count() == 1
    assert "No version in force" in page.locator("#diagram-before").inner_text()
    shot(page, "change-review-new-process")
