"""The demo approval process driven through the REST API: tasks, roles, form limits, races."""

from __future__ import annotations

import threading

import pytest

from tests.api_support import DEMO, open_task, start_demo


@pytest.fixture
def demo(deploy):
    return deploy(DEMO)


def test_an_approval_runs_to_completion_through_the_api(api, engine, demo):
    instance = start_demo(api, "REQ-1")
    assert instance["status"] == "waiting"
    assert (instance["process_key"], instance["version"], instance["initiator"]) == ("demo_approval", 1,
                                                                                     "olivia")

    task = open_task(api, instance["id"], "olivia")
    assert api.post(f"/api/v1/tasks/{task['id']}/claim", as_="olivia").json["assignee"] == "olivia"
    done = api.post(f"/api/v1/tasks/{task['id']}/complete", as_="olivia",
                    json={"data": {"quantity": 5, "comment": "gloves"}})
    assert (done.status_code, done.json["state"]) == (200, "completed")
    for who in ("sam", "quinn"):
        task = open_task(api, instance["id"], who)
        assert api.post(f"/api/v1/tasks/{task['id']}/complete", as_=who,
                        json={"data": {"accepted": True}}).status_code == 200
    assert engine.run_jobs_once() == 1

    detail = api.get(f"/api/v1/instances/{instance['id']}", as_="ada").json
    assert detail["status"] == "completed"
    assert detail["ended_at"] is not None
    assert detail["variables"]["notified"] == {"quantity": 5, "comment": "gloves"}
    assert [h["element_id"] for h in detail["history"] if h["type"] == "UserTask"] == ["request", "review",
                                                                                         "approve"]
    assert [t["state"] for t in detail["tasks"]] == ["completed"] * 3
    assert api.get("/api/v1/audit/verify", as_="quinn").json["ok"] is True


def test_completing_an_already_completed_task_answers_409_and_changes_nothing(api, engine, demo):
    task = open_task(api, start_demo(api)["id"], "olivia")
    url = f"/api/v1/tasks/{task['id']}/complete"
    assert api.post(url, as_="olivia", json={"data": {"quantity": 5, "comment": "x"}}).status_code == 200
    events = len(engine.audit_events(limit=500))
    again = api.post(url, as_="olivia", json={"data": {"quantity": 6, "comment": "y"}})
    assert (again.status_code, again.json["code"]) == (409, "task_not_open")
    assert len(engine.audit_events(limit=500)) == events
    assert api.get(f"/api/v1/tasks/{task['id']}", as_="olivia").json["data"] == {"quantity": 5,
                                                                                 "comment": "x"}


def test_a_task_claimed_by_someone_else_answers_409(api, demo):
    task = open_task(api, start_demo(api)["id"], "olivia")
    api.post(f"/api/v1/tasks/{task['id']}/claim", as_="olivia")
    response = api.post(f"/api/v1/tasks/{task['id']}/complete", as_="oscar",
                        json={"data": {"quantity": 5, "comment": "x"}})
    assert (response.status_code, response.json["code"]) == (409, "task_claimed_by_other")
    assert api.post(f"/api/v1/tasks/{task['id']}/unclaim", as_="olivia").json["state"] == "open"
    assert api.post(f"/api/v1/tasks/{task['id']}/complete", as_="oscar",
                    json={"data": {"quantity": 5, "comment": "x"}}).status_code == 200


def test_someone_without_the_lane_role_gets_403_and_the_task_stays_open(api, demo):
    task = open_task(api, start_demo(api)["id"], "olivia")
    for action, body in (("claim", None), ("complete", {"data": {"quantity": 5, "comment": "x"}})):
        response = api.post(f"/api/v1/tasks/{task['id']}/{action}", as_="quinn", json=body)
        assert (response.status_code, response.json["code"]) == (403, "role_required"), action
    assert api.get(f"/api/v1/tasks/{task['id']}", as_="olivia").json["state"] == "open"
    assert api.get(f"/api/v1/tasks?instance_id={task['instance_id']}", as_="quinn").json == []


@pytest.mark.parametrize("data, field", [
    ({"comment": "x"}, "quantity"),
    ({"quantity": 0, "comment": "x"}, "quantity"),
    ({"quantity": 1001, "comment": "x"}, "quantity"),
    ({"quantity": "many", "comment": "x"}, "quantity"),
    ({"quantity": 5, "comment": "x" * 501}, "comment"),
], ids=["missing", "below-min", "above-max", "not-a-number", "too-long"])
def test_form_data_out_of_limits_answers_400_per_field_and_the_task_stays_open(api, demo, data, field):
    task = open_task(api, start_demo(api)["id"], "olivia")
    response = api.post(f"/api/v1/tasks/{task['id']}/complete", as_="olivia", json={"data": data})
    assert response.status_code == 400
    assert field in response.json["errors"]
    assert api.get(f"/api/v1/tasks/{task['id']}", as_="olivia").json["state"] == "open"


def test_task_filters_and_a_bad_state_filter(api, demo):
    instance = start_demo(api)
    task = open_task(api, instance["id"], "olivia")
    assert api.get("/api/v1/tasks?mine=true", as_="olivia").json == []
    api.post(f"/api/v1/tasks/{task['id']}/claim", as_="olivia")
    assert [t["id"] for t in api.get("/api/v1/tasks?mine=true", as_="olivia").json] == [task["id"]]
    assert [t["id"] for t in api.get("/api/v1/tasks?role=operator", as_="ada").json] == [task["id"]]
    assert api.get("/api/v1/tasks?state=completed", as_="olivia").json == []
    for query in ("state=finished", "mine=perhaps", "instance_id=abc"):
        response = api.get(f"/api/v1/tasks?{query}", as_="olivia")
        assert (response.status_code, response.json["code"]) == (400, "bad_filter"), query


def test_two_people_racing_to_complete_one_task_get_exactly_one_200_and_one_409(api, app, demo):
    task = open_task(api, start_demo(api)["id"], "olivia")
    tokens = [api.token("olivia"), api.token("oscar")]
    barrier = threading.Barrier(2)
    statuses: list[int] = []

    def complete(token: str) -> None:
        client = app.test_client()
        barrier.wait()
        response = client.post(f"/api/v1/tasks/{task['id']}/complete",
                               headers={"Authorization": f"Bearer {token}"},
                               json={"data": {"quantity": 5, "comment": token[:5]}})
        statuses.append(response.status_code)
        if response.status_code == 409:
            assert response.json["code"] == "task_not_open"

    threads = [threading.Thread(target=complete, args=(t,)) for t in tokens]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sorted(statuses) == [200, 409]
