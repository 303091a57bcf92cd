"""Process definitions, instance search and the admin's instance actions, through the API."""

from __future__ import annotations

import pytest

from tests.api_support import DEMO, start_demo


@pytest.fixture
def demo(deploy):
    return deploy(DEMO)


def test_definitions_list_every_version_and_mark_the_latest_active(api, demo):
    definitions = api.get("/api/v1/process-definitions", as_="olivia").json
    assert [(d["key"], d["version"], d["status"], d["latest_active"]) for d in definitions] == [
        ("demo_approval", 1, "active", True)]
    assert definitions[0]["id"] == demo.id


def test_starting_an_unknown_process_answers_404(api, demo):
    response = api.post("/api/v1/process-definitions/no_such_process/instances", as_="olivia", json={})
    assert response.status_code == 404


def test_instance_filters_narrow_the_search_and_count_the_total(api, clock, demo):
    first = start_demo(api, "REQ-A")
    clock.advance(hours=1)
    second = start_demo(api, "REQ-B")
    assert api.get("/api/v1/instances", as_="ada").json["total"] == 2
    by_key = api.get("/api/v1/instances?business_key=REQ-B", as_="ada").json
    assert ([i["id"] for i in by_key["items"]], by_key["total"]) == ([second["id"]], 1)
    after = api.get("/api/v1/instances?started_after=2026-01-05T08:30:00Z", as_="ada").json
    assert [i["id"] for i in after["items"]] == [second["id"]]
    before = api.get("/api/v1/instances?started_before=2026-01-05T08:30:00%2B00:00", as_="ada").json
    assert [i["id"] for i in before["items"]] == [first["id"]]
    page = api.get("/api/v1/instances?limit=1&offset=1", as_="ada").json
    assert ([i["id"] for i in page["items"]], page["total"]) == ([first["id"]], 2)
    assert api.get("/api/v1/instances?key=demo_approval&version=1&status=waiting",
                   as_="ada").json["total"] == 2
    assert api.get("/api/v1/instances?version=2", as_="ada").json["total"] == 0


@pytest.mark.parametrize("value", ["' OR '1'='1", "x\"; DROP TABLE process_instance; --", "%", "_", "\\",
                                   "REQ-%"])
def test_sql_metacharacters_in_filters_match_nothing_and_break_nothing(api, demo, value):
    start_demo(api, "REQ-1")
    response = api.get("/api/v1/instances", as_="ada", query_string={"business_key": value, "key": value})
    assert response.status_code == 200
    assert response.json == {"items": [], "total": 0}
    assert api.get("/api/v1/instances", as_="ada").json["total"] == 1


@pytest.mark.parametrize("query", ["limit=0", "limit=501", "limit=many", "offset=-1", "version=x",
                                   "started_after=yesterday", "started_before=2026-13-01"])
def test_bad_filter_values_answer_400_bad_filter(api, query):
    response = api.get(f"/api/v1/instances?{query}", as_="ada")
    assert (response.status_code, response.json["code"]) == (400, "bad_filter")
    assert set(response.json["errors"]) == {query.split("=")[0]}


def test_an_admin_suspends_and_resumes_an_instance_with_a_reason(api, engine, demo):
    instance = start_demo(api)
    url = f"/api/v1/instances/{instance['id']}"
    suspended = api.post(f"{url}/suspend", as_="ada", json={"reason": "deviation DEV-7 under investigation"})
    assert (suspended.status_code, suspended.json["status"]) == (200, "suspended")
    assert suspended.json["status_reason"] == "deviation DEV-7 under investigation"
    assert api.post(f"{url}/resume", as_="ada", json={"reason": "DEV-7 closed"}).json["status"] == "waiting"
    actions = [e.action for e in engine.audit_events(object_type="instance", object_id=str(instance["id"]))]
    assert actions[-2] == "instance.suspended"
    assert actions[-1].startswith("instance.resume")  # engine spells it "instance.resumeed" (reported)


@pytest.mark.parametrize("action", ["suspend", "resume", "terminate"])
@pytest.mark.parametrize("body", [None, {}, {"reason": ""}, {"reason": "   "}],
                         ids=["no-body", "empty", "blank", "spaces"])
def test_instance_actions_without_a_reason_answer_400_reason_required(api, demo, action, body):
    instance = start_demo(api)
    response = api.post(f"/api/v1/instances/{instance['id']}/{action}", as_="ada", json=body)
    assert (response.status_code, response.json["code"]) == (400, "reason_required")
    assert response.json["errors"] == {"reason": "required"}
    assert api.get(f"/api/v1/instances/{instance['id']}", as_="ada").json["status"] == "waiting"


def test_terminating_cancels_open_tasks_and_cannot_be_undone(api, demo):
    instance = start_demo(api)
    url = f"/api/v1/instances/{instance['id']}"
    terminated = api.post(f"{url}/terminate", as_="ada", json={"reason": "raised in error"})
    assert (terminated.json["status"], terminated.json["ended_at"] is not None) == ("terminated", True)
    assert api.get(f"/api/v1/tasks?instance_id={instance['id']}", as_="olivia").json == []
    again = api.post(f"{url}/resume", as_="ada", json={"reason": "oops"})
    assert again.status_code == 409


@pytest.mark.parametrize("who", ["olivia", "quinn", "sam"])
def test_only_an_admin_may_suspend_resume_or_terminate(api, demo, who):
    instance = start_demo(api)
    for action in ("suspend", "resume", "terminate"):
        response = api.post(f"/api/v1/instances/{instance['id']}/{action}", as_=who,
                            json={"reason": "because"})
        assert (response.status_code, response.json["code"]) == (403, "role_required")


def test_the_audit_trail_is_for_admins_and_qa(api, demo):
    start_demo(api)
    assert api.get("/api/v1/audit/verify", as_="olivia").status_code == 403
    assert api.get("/api/v1/audit", as_="olivia").status_code == 403
    events = api.get("/api/v1/audit?object_type=instance&limit=5", as_="quinn").json
    assert [e["action"] for e in events] == ["instance.started"]
    report = api.get("/api/v1/audit/verify", as_="ada").json
    assert report["ok"] is True and report["checked"] > 0 and report["first_broken"] is None


def test_messages_incidents_and_signatures_answer(api, demo, deploy):
    deploy("message_catch.bpmn")  # a message is kept only if some process catches it (from this sender)
    message = api.post("/api/v1/messages", as_="erin",
                       json={"name": "qc_result", "correlation_keys": {"order": "1"}, "payload": {}})
    assert (message.status_code, message.json["status"]) == (200, "pending")
    assert api.get("/api/v1/incidents", as_="ada").json == []
    assert api.post("/api/v1/incidents/99/retry", as_="ada", json={"reason": "x"}).status_code == 404
    assert api.post("/api/v1/incidents/99/retry", as_="olivia", json={"reason": "x"}).status_code == 403
    assert api.get("/api/v1/signatures?instance_id=1", as_="ada").json == []


@pytest.mark.parametrize("path", ["/api/v1/instances/99999999999999999999", "/api/v1/tasks/1e3",
                                  "/api/v1/process-definitions/bad%00key/instances"])
def test_ids_and_keys_that_cannot_exist_answer_404_not_500(api, path):
    method = "POST" if path.endswith("instances") else "GET"
    response = api.call(method, path, as_="ada", json={})
    assert (response.status_code, response.json["code"]) == (404, "not_found")
