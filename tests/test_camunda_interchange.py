"""A file drawn in the Camunda Modeler runs with what gmpflow has the concept for:
``candidateStarterGroups`` says who may start, ``candidateGroups`` is the task's role, ``assignee`` claims it
for that person, ``formKey`` is its form, ``camunda:inputOutput`` sets values before and after it. The rest is
named as ignored, on lint and on deploy, never silently dropped and never a refusal."""

from __future__ import annotations

import json

from click.testing import CliRunner

from engine import cli
from engine.definitions.bundle import read_bundle
from tests.api_support import body
from tests.conftest import FIXTURES
from tests.session_support import browser_session

BUNDLE = FIXTURES / "camunda_interchange"


def start(api, as_="olivia"):
    return api.post("/api/v1/process-definitions/camunda_interchange/instances", as_=as_,
                    json={"business_key": "DEV-1", "variables": {}})


def test_the_assigned_task_is_in_the_assignees_inbox_with_its_form_and_its_input_values(api, engine, deploy):
    api.ensure_user("quinn")  # the assignee exists (and holds qa, the task's candidate group)
    deploy(BUNDLE)
    assert start(api, as_="quinn").status_code == 403  # candidateStarterGroups: operators start it
    instance = body(start(api))

    mine = body(api.get("/api/v1/tasks?mine=true", as_="quinn"))
    assert [(t["element_id"], t["state"], t["assignee"], t["lane"], t["form_id"]) for t in mine] == [
        ("review_deviation", "claimed", "quinn", "qa", "camunda_interchange_review")]
    assert body(api.get(f"/api/v1/tasks?instance_id={instance['id']}", as_="sam")) == []  # not a qa holder
    refused = api.post(f"/api/v1/tasks/{mine[0]['id']}/complete", as_="olivia",
                       json={"data": {"accepted": True}})
    assert (refused.status_code, refused.json["code"]) == (409, "task_claimed_by_other")

    done = api.post(f"/api/v1/tasks/{mine[0]['id']}/complete", as_="quinn", json={"data": {"accepted": True}})
    assert done.status_code == 200, done.json
    filing = body(api.get(f"/api/v1/tasks?instance_id={instance['id']}", as_="oscar"))
    assert [(t["element_id"], t["state"], t["lane"], t["form_id"]) for t in filing] == [
        ("file_deviation", "open", "operator", None)]  # an 'embedded:' form key names another app's screen
    variables = body(api.get(f"/api/v1/instances/{instance['id']}", as_="ada"))["variables"]
    assert (variables["site"], variables["reviewed_at_site"], variables["accepted"]) == ("Plant 1", "Plant 1",
                                                                                        True)


def test_the_tasks_form_is_read_through_the_api_by_whoever_may_see_the_task(api, engine, deploy):
    """Deploy a Camunda Modeler file, start it, and the form its ``camunda:formKey`` names comes with the task
    through the REST API: to its assignee; not to a holder of another role; a form key naming another app's
    screen (``embedded:``) gives no form."""
    api.ensure_user("quinn")
    deploy(BUNDLE)
    instance = body(start(api))
    [task] = body(api.get("/api/v1/tasks?mine=true", as_="quinn"))
    form = body(api.get(f"/api/v1/tasks/{task['id']}/form", as_="quinn"))
    drawn = json.loads((BUNDLE / "camunda_interchange_review.form").read_text())
    assert (form["task_id"], form["form_id"], form["form"]) == (task["id"], "camunda_interchange_review",
                                                                drawn)
    assert api.get(f"/api/v1/tasks/{task['id']}/form", as_="sam").status_code == 403  # a supervisor
    api.post(f"/api/v1/tasks/{task['id']}/complete", as_="quinn", json={"data": {"accepted": True}})
    [filing] = body(api.get(f"/api/v1/tasks?instance_id={instance['id']}", as_="oscar"))
    assert body(api.get(f"/api/v1/tasks/{filing['id']}/form", as_="oscar")) == {
        "task_id": filing["id"], "form_id": None, "form": None}


def test_an_assignee_who_is_no_user_is_named_and_the_task_opens_for_its_role(api, engine, deploy):
    notices = engine.lint_notices(read_bundle([BUNDLE]))
    assert ("review_deviation", "unknown_assignee") in {(n.element_id, n.code) for n in notices}
    deploy(BUNDLE)
    instance = body(start(api))
    tasks = body(api.get(f"/api/v1/tasks?instance_id={instance['id']}", as_="ada"))
    assert [(t["state"], t["assignee"], t["lane"]) for t in tasks] == [("open", None, "qa")]


def test_what_gmpflow_does_not_run_is_named_as_ignored_on_lint_and_deploy(engine, monkeypatch):
    monkeypatch.setattr(cli, "_engine", lambda: engine)  # the command on this test's engine
    linted = CliRunner().invoke(cli.main, ["lint", str(BUNDLE)])
    assert linted.exit_code == 0, linted.output
    assert "[review_deviation]: gmpflow does not run camunda:dueDate, camunda:taskListener" in linted.output
    assert "[file_deviation]: gmpflow does not run camunda:formKey" in linted.output
    assert "camunda:assignee names 'quinn', who is no active user" in linted.output
    deployed = CliRunner().invoke(cli.main, ["deploy", str(BUNDLE)])
    assert deployed.exit_code == 0, deployed.output
    assert "camunda_interchange 1 active" in deployed.output and "camunda:taskListener" in deployed.output


def test_the_assignees_web_inbox_lists_the_task_and_its_page_shows_the_form(api, app, engine, deploy):
    api.ensure_user("quinn")
    deploy(BUNDLE)
    instance = body(start(api))
    task = body(api.get("/api/v1/tasks?mine=true", as_="quinn"))[0]
    app.config.update(WTF_CSRF_ENABLED=False, SESSION_COOKIE_SECURE=False)
    client = app.test_client()
    browser_session(app, client, engine, "quinn")
    inbox = client.get("/inbox").get_data(as_text=True)
    assert "Review the deviation" in inbox and f"/tasks/{task['id']}" in inbox
    page = client.get(f"/tasks/{task['id']}").get_data(as_text=True)
    assert "camunda_interchange_review" in page and "Deviation accepted" in page
    assert instance["id"] == task["instance_id"]
