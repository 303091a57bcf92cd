"""Hostile and bad input, table-driven. Every case gets a clear error code, and neither the stored state
(row counts of every table) nor the audit trail (its last link) changes.

Entry points: deploying models (every XML file is a BPMN or DMN of a bundle; no B2MML endpoint is
served by the web app yet), the REST API (form data, task ids, every filter, body size, bearer tokens)
and the web pages (CSRF, login lockout).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

from engine.errors import DefinitionError, ScriptRejected
from engine.services import Gmpflow
from tests.api_support import DEMO, PASSWORD, Api, body, open_task, start_demo
from tests.conftest import ADMIN, ROOT
from tests.hostile_support import bundle, snapshot
from tests.session_support import browser_session
from tests.test_sandbox import ESCAPES

# -- deploying models ---------------------------------------------------------------------------------------
XXE = '<?xml version="1.0"?>\n<!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n<d>&x;</d>'
BILLION_LAUGHS = ('<?xml version="1.0"?>\n<!DOCTYPE lolz [<!ENTITY lol "lol">'
                  + "".join(f'<!ENTITY lol{i} "{("&lol" + (str(i - 1) if i > 1 else "") + ";") * 10}">'
                            for i in range(1, 10))
                  + ']>\n<lolz>&lol9;</lolz>')
EXTERNAL_DTD = '<?xml version="1.0"?>\n<!DOCTYPE d SYSTEM "http://127.0.0.1:9/evil.dtd">\n<d/>'
PARAMETER_ENTITY = ('<?xml version="1.0"?>\n'
                    '<!DOCTYPE d [<!ENTITY % ext SYSTEM "http://127.0.0.1:9/x"> %ext;]>'
                    '\n<d/>')
OVERSIZE = bundle()["hostile.bpmn"] + "<!--" + "x" * 5_100_000 + "-->"


def _with(name: str, content: str | bytes) -> dict[str, str | bytes]:
    files: dict[str, str | bytes] = dict(bundle())
    files[name] = content
    return files


DEPLOY_CASES: list[tuple[str, dict[str, str | bytes], str]] = [
    ("bpmn-not-xml", _with("hostile.bpmn", "not xml at all"), "xml_malformed"),
    ("bpmn-truncated", _with("hostile.bpmn", bundle()["hostile.bpmn"][:400]), "xml_malformed"),
    ("bpmn-undeclared-prefix", _with("hostile.bpmn", "<bpmn:definitions/>"), "xml_malformed"),
    ("dmn-mismatched-tags", _with("hostile_rule.dmn", "<definitions><oops></definitions>"), "xml_malformed"),
    ("form-not-json", _with("f.form", "{not json"), "form_malformed"),
    ("form-not-an-object", _with("f.form", "[1, 2, 3]"), "form_malformed"),
    ("form-components-not-a-list", _with("f.form", '{"id": "f", "components": "x"}'), "form_malformed"),
    ("bpmn-xxe", _with("hostile.bpmn", XXE), "xml_forbidden"),
    ("dmn-xxe", _with("hostile_rule.dmn", XXE), "xml_forbidden"),
    ("bpmn-billion-laughs", _with("hostile.bpmn", BILLION_LAUGHS), "xml_forbidden"),
    ("dmn-billion-laughs", _with("hostile_rule.dmn", BILLION_LAUGHS), "xml_forbidden"),
    ("bpmn-external-dtd", _with("hostile.bpmn", EXTERNAL_DTD), "xml_forbidden"),
    ("dmn-external-dtd", _with("hostile_rule.dmn", EXTERNAL_DTD), "xml_forbidden"),
    ("bpmn-parameter-entity", _with("hostile.bpmn", PARAMETER_ENTITY), "xml_forbidden"),
    ("bpmn-doctype-after-whitespace", _with("hostile.bpmn", "\n\n   " + XXE.split("\n", 1)[1]),
     "xml_forbidden"),
    ("bpmn-oversize", _with("hostile.bpmn", OVERSIZE), "xml_too_large"),
    ("dmn-oversize", _with("hostile_rule.dmn", OVERSIZE), "xml_too_large"),
    ("bpmn-utf16-with-doctype", _with("hostile.bpmn", XXE.replace('"1.0"?>', '"1.0" encoding="UTF-16"?>')
                                     .encode("utf-16")), "file_not_utf8"),
]


@pytest.fixture
def deploy_files(engine: Gmpflow, tmp_path: Path) -> Callable[[dict[str, str | bytes]], None]:
    def _deploy(files: dict[str, str | bytes]) -> None:
        folder = tmp_path / f"bundle{len(list(tmp_path.iterdir()))}"
        folder.mkdir()
        for name, content in files.items():
            (folder / name).write_bytes(content if isinstance(content, bytes) else content.encode())
        engine.deploy(ADMIN, [folder])

    return _deploy


def test_the_unchanged_template_deploys(deploy_files: Callable[..., None]) -> None:
    deploy_files(bundle())  # so every refusal below is the hostile part's doing


@pytest.mark.parametrize(("files", "code"), [c[1:] for c in DEPLOY_CASES], ids=[c[0] for c in DEPLOY_CASES])
def test_a_hostile_model_file_is_refused_and_nothing_is_stored(engine: Gmpflow,
                                                              deploy_files: Callable[..., None],
                                                              files: dict[str, str | bytes],
                                                              code: str) -> None:
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        deploy_files(files)
    assert refused.value.code == code, refused.value
    assert snapshot(engine.db) == before


MODELER_CASES = [case for case in DEPLOY_CASES
                 if all(isinstance(c, str) for c in case[1].values()) and case[2] != "xml_too_large"]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # the same refusals on both are tested above
@pytest.mark.parametrize("route", ["/modeler/save", "/modeler/lint"])
@pytest.mark.parametrize(("files", "code"), [c[1:] for c in MODELER_CASES], ids=[c[0] for c in MODELER_CASES])
def test_a_hostile_model_posted_to_the_browser_modeler_is_refused_and_nothing_is_stored(
        app: Any, api: Api, engine: Gmpflow, route: str, files: dict[str, str], code: str) -> None:
    """The modeler's save and lint endpoints take the bundle's files as JSON text (the XML entry point of
    the web app); an oversize one stops at the 1 MB body limit (413)."""
    engine.add_user(ADMIN, "pete", "Pete Owner", PASSWORD, ["process_owner"])
    client = _signed_in(app, engine, "pete")
    page = client.get("/modeler").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    before = snapshot(engine.db)
    response = client.post(route, json={"files": files}, headers={"X-CSRFToken": token})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert code in [p["code"] for p in response.json["problems"]], response.json
    assert snapshot(engine.db) == before


def test_an_oversize_model_posted_to_the_browser_modeler_is_refused_with_413(app: Any, api: Api,
                                                                             engine: Gmpflow) -> None:
    engine.add_user(ADMIN, "pete", "Pete Owner", PASSWORD, ["process_owner"])
    client = _signed_in(app, engine, "pete")
    page = client.get("/modeler").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    before = snapshot(engine.db)
    response = client.post("/modeler/save", json={"files": {"hostile.bpmn": OVERSIZE}},
                           headers={"X-CSRFToken": token})
    assert response.status_code == 413
    assert snapshot(engine.db) == before


# Sandbox escapes: every compile-time refusal of the sandbox's own table, in a script task; the
# expression ones also in a gateway condition, a DMN input cell and a DMN output cell.
REFUSED = [(case_id, code, mode) for case_id, code, mode, error, _ in ESCAPES if error is ScriptRejected]
PLACES: dict[str, Callable[[str], dict[str, str]]] = {
    "script-task": lambda code: bundle(script=code),
    "gateway-condition": lambda code: bundle(condition=code),
    "dmn-input-cell": lambda code: bundle(input_cell=code),
    "dmn-output-cell": lambda code: bundle(output_cell=code),
}
SANDBOX_CASES = [pytest.param(place, code, id=f"{place}-{case_id}") for case_id, code, mode in REFUSED
                 for place in PLACES if place == "script-task" or (mode == "eval" and "\n" not in code)]


def test_there_are_at_least_twenty_escapes_per_place() -> None:
    for place in PLACES:
        assert sum(1 for case in SANDBOX_CASES if case.values[0] == place) >= 20, place


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused by lint before any storage
@pytest.mark.parametrize(("place", "code"), SANDBOX_CASES)
def test_a_sandbox_escape_is_refused_at_deploy(engine: Gmpflow, deploy_files: Callable[..., None], place: str,
                                              code: str) -> None:
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        deploy_files(PLACES[place](code))
    assert refused.value.code == "lint_failed", refused.value
    assert [p["code"] for p in refused.value.context["problems"]] == ["script_rejected"], refused.value
    assert snapshot(engine.db) == before


# Bounded expressions: what lint can see past a sandbox limit is refused at deploy, in every place code
# runs; what depends on the data is refused when it runs, as a 422 that stores nothing.
CONSTANT_HEAVY = [
    ("issue-decimal", "int(Decimal('1e100000000')) > 0"),
    ("issue-power", "2**10**8 > 0"),
    ("issue-repetition", "'x' * 10**9 == ''"),
    ("factorial", "math.factorial(10**7) > 0"),
    ("huge-round", "round(5, -10**9) == 0"),
]
HEAVY_CASES = [pytest.param(place, code, id=f"{place}-{case_id}") for case_id, code in CONSTANT_HEAVY
               for place in PLACES]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)  # refused by lint before any storage
@pytest.mark.parametrize(("place", "code"), HEAVY_CASES)
def test_a_constant_expression_past_a_sandbox_limit_is_refused_at_deploy(
        engine: Gmpflow, deploy_files: Callable[..., None], place: str, code: str) -> None:
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        deploy_files(PLACES[place](code if place != "script-task" else f"y = {code}"))
    assert refused.value.code == "lint_failed", refused.value
    assert [p["code"] for p in refused.value.context["problems"]] == ["script_rejected"], refused.value
    assert "refused before it runs" in refused.value.context["problems"][0]["message"]
    assert snapshot(engine.db) == before


DMN_ENTRIES = [  # (id, input entry, the problem's code or None when it deploys)
    ("unary-test", ">= 1", None),
    ("both-ends", "0 < ? < 6", None),
    ("unary-test-escape", "> __import__('os')", "script_rejected"),
    ("unary-test-past-a-limit", "> 2**10**8", "script_rejected"),
    ("range-test-past-a-limit", "? < 10**10**10", "script_rejected"),
    ("many-input-marks", " + ".join(["?"] * 21) + " > 0", "script_rejected"),
]


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
@pytest.mark.parametrize(("entry", "code"), [c[1:] for c in DMN_ENTRIES], ids=[c[0] for c in DMN_ENTRIES])
def test_a_dmn_input_entry_is_checked_as_the_expression_it_becomes(
        engine: Gmpflow, deploy_files: Callable[..., None], entry: str, code: str | None) -> None:
    if code is None:
        deploy_files(bundle(input_cell=entry))
        return
    before = snapshot(engine.db)
    with pytest.raises(DefinitionError) as refused:
        deploy_files(bundle(input_cell=entry))
    assert [p["code"] for p in refused.value.context["problems"]] == [code], refused.value
    assert snapshot(engine.db) == before


START = "/api/v1/process-definitions/hostile/instances"
RUNTIME_HEAVY = [  # (id, bundle, code of the answer); x is 1 when the script's default runs
    ("script-decimal", bundle(script="e = '1e100000000'\nn = int(Decimal(e))"), "script_limit_exceeded"),
    ("script-power", bundle(script="n = 10**8\nx = 2**n"), "script_limit_exceeded"),
    ("script-repetition", bundle(script="n = 10**9\nx = 'x' * n"), "script_limit_exceeded"),
    ("script-shared-parts", bundle(script="a = [0]\nfor i in range(40):\n    a = [a, a]\nx = 1"),
     "script_limit_exceeded"),
    ("script-endless-loop", bundle(script="x = 1\nwhile x: pass"), "script_limit_exceeded"),
    ("condition-power", bundle(condition="2 ** (x * 10**8) > 0"), "script_limit_exceeded"),
    ("condition-repetition", bundle(condition="'x' * (x * 10**9) == ''"), "script_limit_exceeded"),
    ("dmn-output-repetition", bundle(output_cell="'A' * (x * 10**9)"), "script_limit_exceeded"),

    ("condition-error", bundle(condition="1 / (x - 1) > 0"), "script_failed"),
    ("script-leaves-a-date", bundle(script="x = 1\nday = date(2024, 1, 1)"), "script_failed"),
    ("script-leaves-a-decimal", bundle(script="x = 1\nprice = Decimal('1.5')"), "script_failed"),
]


@pytest.mark.parametrize(("files", "code"), [c[1:] for c in RUNTIME_HEAVY], ids=[c[0] for c in RUNTIME_HEAVY])
def test_a_heavy_expression_at_run_time_answers_a_clear_problem_and_stores_nothing(
        api: Api, engine: Gmpflow, deploy: Callable[..., Any], files: dict[str, str], code: str) -> None:
    deploy(files)
    api.token("ada")
    before = snapshot(engine.db)
    response = api.post(START, as_="ada", json={"business_key": "HEAVY-1", "variables": {}})
    assert (response.status_code, response.json["code"]) == (422, code), response.json
    assert snapshot(engine.db) == before
    assert api.get("/api/v1/process-definitions", as_="ada").status_code == 200  # and the server answers


def test_a_script_formats_today_through_the_api(api: Api, engine: Gmpflow,
                                                deploy: Callable[..., Any]) -> None:
    deploy(bundle(script="today = datetime.now().strftime('%Y-%m-%d')\n"
                         "due = (datetime.strptime(today, '%Y-%m-%d') + timedelta(days=30)).isoformat()\n"
                         "price = str(Decimal('19.99') * 3)\nx = 1"))
    response = api.post(START, as_="ada", json={"business_key": "DATES-1", "variables": {}})
    assert response.status_code == 201, response.json
    assert body(response)["status"] == "completed", response.json


def test_a_model_whose_script_prints_deploys_and_runs_to_the_end(api: Api, engine: Gmpflow,
                                                              deploy: Callable[..., Any],
                                                              capfd: pytest.CaptureFixture[str]) -> None:
    # SpiffWorkflow's own models print; the sandbox's print writes nothing on the server
    deploy(bundle(script="x = 1\nprint('refill count = %d' % x, sep='')"))
    response = api.post(START, as_="ada", json={"business_key": "PRINT-1", "variables": {}})
    assert response.status_code == 201, response.json
    assert body(response)["status"] == "completed", response.json
    assert "refill count" not in capfd.readouterr().out


@pytest.mark.parametrize("database", ["sqlite"], indirect=True)
def test_other_requests_are_served_while_a_hostile_script_runs(app: Any, api: Api, engine: Gmpflow,
                                                               deploy: Callable[..., Any]) -> None:
    deploy(bundle(script="x = 1\nwhile x: pass"))
    token = api.token("ada")
    headers = {"Authorization": f"Bearer {token}"}
    hostile_answered = threading.Event()
    answers: list[tuple[int, str]] = []

    def hostile() -> None:
        response = app.test_client().post(START, headers=headers, json={"business_key": "LOOP-1",
                                                                        "variables": {}})
        answers.append((response.status_code, response.json["code"]))
        hostile_answered.set()

    thread = threading.Thread(target=hostile)
    thread.start()
    other = app.test_client().get("/api/v1/process-definitions", headers=headers)
    served_meanwhile = not hostile_answered.is_set()
    thread.join()
    assert other.status_code == 200
    assert served_meanwhile, "the other request waited for the hostile script"
    assert answers == [(422, "script_limit_exceeded")]


# -- the REST API -------------------------------------------------------------------------------------------
@pytest.fixture
def demo(deploy: Callable[..., Any], api: Api) -> dict[str, Any]:
    """A demo approval waiting on the operator's task, and tokens for everyone (made before any snapshot)."""
    deploy(DEMO)
    instance = start_demo(api, "HOSTILE-1")
    return {"instance": instance, "task": open_task(api, instance["id"], "olivia")}


LONG = "x" * 501
FORM_CASES = [
    ("quantity-as-text", {"data": {"quantity": "five", "comment": "c"}}, 400),
    ("quantity-as-list", {"data": {"quantity": [5], "comment": "c"}}, 400),
    ("quantity-as-bool", {"data": {"quantity": True, "comment": "c"}}, 400),
    ("quantity-missing", {"data": {"comment": "c"}}, 400),
    ("comment-missing", {"data": {"quantity": 5}}, 400),
    ("quantity-below-minimum", {"data": {"quantity": 0, "comment": "c"}}, 400),
    ("quantity-above-maximum", {"data": {"quantity": 1001, "comment": "c"}}, 400),
    ("quantity-huge", {"data": {"quantity": 10**400, "comment": "c"}}, 400),
    ("quantity-nan", '{"data": {"quantity": NaN, "comment": "c"}}', 400),
    ("comment-too-long", {"data": {"quantity": 5, "comment": LONG}}, 400),
    ("comment-nul", {"data": {"quantity": 5, "comment": "a\u0000b"}}, 400),
    ("data-not-an-object", {"data": [1, 2]}, 400),
    ("data-missing", {}, 400),
    ("body-not-json", "quantity=5", 400),
    ("body-a-string", '"data"', 400),
    ("deeply-nested", '{"data": {"quantity": 5, "comment": "c", "x": ' + "[" * 5000 + "]" * 5000 + "}}", 400),
]


@pytest.mark.parametrize(("body", "status"), [c[1:] for c in FORM_CASES], ids=[c[0] for c in FORM_CASES])
def test_bad_form_data_is_refused_and_nothing_changes(api: Api, engine: Gmpflow, demo: dict[str, Any],
                                                      body: Any, status: int) -> None:
    before = snapshot(engine.db)
    kwargs: dict[str, Any] = {"json": body} if isinstance(body, dict) else {
        "data": body, "headers": {"Content-Type": "application/json"}}
    response = api.post(f"/api/v1/tasks/{demo['task']['id']}/complete", as_="olivia", **kwargs)
    assert response.status_code == status, response.json
    assert response.json["code"], response.json
    assert snapshot(engine.db) == before
    assert api.get(f"/api/v1/tasks/{demo['task']['id']}", as_="olivia").json["state"] == "open"


TASK_CASES = [  # (id, method, path, who, status, code)
    ("unknown-task-complete", "POST", "/api/v1/tasks/987654/complete", "olivia", 404, "task_not_found"),
    ("unknown-task-claim", "POST", "/api/v1/tasks/987654/claim", "olivia", 404, "task_not_found"),
    ("unknown-task-read", "GET", "/api/v1/tasks/987654", "olivia", 404, "task_not_found"),
    ("id-beyond-64-bits", "POST", "/api/v1/tasks/99999999999999999999/complete", "olivia", 404, None),
    ("negative-id", "POST", "/api/v1/tasks/-1/complete", "olivia", 404, None),
    ("foreign-task-complete", "POST", "{task}/complete", "sam", 403, None),
    ("foreign-task-claim", "POST", "{task}/claim", "quinn", 403, None),
    ("foreign-task-unclaim", "POST", "{claimed}/unclaim", "sam", 409, "task_claimed_by_other"),
    ("unknown-instance-suspend", "POST", "/api/v1/instances/987654/suspend", "ada", 404,
     "instance_not_found"),
    ("unknown-incident-retry", "POST", "/api/v1/incidents/987654/retry", "ada", 404, "incident_not_found"),
    ("unknown-definition-start", "POST", "/api/v1/process-definitions/nope/instances", "olivia", 404, None),
]


@pytest.mark.parametrize(("method", "path", "who", "status", "code"), [c[1:] for c in TASK_CASES],
                         ids=[c[0] for c in TASK_CASES])
def test_unknown_and_foreign_ids_are_refused_and_nothing_changes(api: Api, engine: Gmpflow,
                                                                 demo: dict[str, Any], method: str, path: str,
                                                                 who: str, status: int,
                                                                 code: str | None) -> None:
    task = f"/api/v1/tasks/{demo['task']['id']}"
    if "{claimed}" in path:  # olivia holds it; someone else tries to release it
        assert api.post(f"{task}/claim", as_="olivia").status_code == 200
    path = path.format(task=task, claimed=task)
    body = {"data": {"quantity": 5, "comment": "c"}, "reason": "because", "business_key": "X",
            "variables": {}}
    token = api.token(who)  # made before the snapshot: the account is not part of the case
    before = snapshot(engine.db)
    response = api.call(method, path, token=token, **({"json": body} if method == "POST" else {}))
    assert response.status_code == status, response.json
    if code:
        assert response.json["code"] == code, response.json
    assert snapshot(engine.db) == before


SQL_PAYLOADS = ["' OR '1'='1", "1; DROP TABLE audit_event; --", "%' OR 1=1 --", '" OR ""="', "\\'; --",
                "*/ UNION SELECT username, password_hash FROM \"user\" --", "_%", "1' AND SLEEP(5)--"]


def _filters(api: Api) -> list[tuple[str, str]]:
    """Every query parameter of every GET operation in the OpenAPI document (path parameters filled with
    names that exist nowhere, so those answer 404 or refuse the filter)."""
    return [(re.sub(r"\{[^}]+\}", "nothing_here", path), param["name"])
            for path, item in api.spec["paths"].items()
            for method, op in item.items() if method == "get"
            for param in op.get("parameters", []) if param.get("in") == "query"]


def test_sql_metacharacters_in_every_filter_find_nothing_and_change_nothing(api: Api, engine: Gmpflow,
                                                                            demo: dict[str, Any]) -> None:
    filters = _filters(api)
    assert len(filters) >= 20, filters  # instances, tasks, audit, signatures, incidents, masterdata...
    api.token("ada")
    before = snapshot(engine.db)
    for path, name in filters:
        for payload in SQL_PAYLOADS:
            response = api.get(path, as_="ada", query_string={name: payload})
            assert response.status_code in ((200, 400, 404) if "nothing_here" in path else (200, 400)), (
                path, name, payload, response.json)
            if response.status_code == 404:
                continue
            if response.status_code == 400:
                assert response.json["code"] == "bad_filter", (path, name, response.json)
                continue
            items = (response.json.get("items", response.json) if isinstance(response.json, dict)
                     else response.json)
            if isinstance(items, list) and name not in ("limit", "offset", "mine"):
                assert items == [], (path, name, payload, items[:1])
    assert snapshot(engine.db) == before


def test_an_oversize_body_is_refused_with_413(api: Api, engine: Gmpflow, demo: dict[str, Any]) -> None:
    before = snapshot(engine.db)
    huge = json.dumps({"data": {"quantity": 5, "comment": "x" * (1024 * 1024 + 10)}})
    response = api.post(f"/api/v1/tasks/{demo['task']['id']}/complete", as_="olivia", data=huge,
                        headers={"Content-Type": "application/json"})
    assert response.status_code == 413, response.json
    assert response.json["code"]
    assert snapshot(engine.db) == before


TOKEN_CASES = ["expired", "other-installation", "tampered-signature", "tampered-payload", "unsigned-jwt",
               "empty", "basic-scheme", "garbage"]


@pytest.mark.parametrize("kind", TOKEN_CASES)
def test_expired_and_forged_bearer_tokens_are_refused_with_401(api: Api, engine: Gmpflow, clock: Any,
                                                               demo: dict[str, Any], kind: str) -> None:
    from webapp import create_app

    good = api.token("olivia")
    headers: dict[str, str] = {}
    if kind == "expired":
        clock.advance(hours=8, minutes=1)
        token = good
    elif kind == "other-installation":
        elsewhere = create_app({"SECRET_KEY": "another installation"}, engine=engine)
        token = Api(elsewhere, elsewhere.test_client()).token("olivia")
    elif kind == "tampered-signature":
        token = good[:-3] + ("AAA" if not good.endswith("AAA") else "BBB")
    elif kind == "tampered-payload":  # claim to be the admin with olivia's signature
        payload, rest = good.split(".", 1)
        token = payload.replace(payload[:4], "eyJ1IjoiYWRhIn0"[:4], 1) + "x." + rest
    elif kind == "unsigned-jwt":
        token = "eyJhbGciOiJub25lIn0.eyJ1IjoiYWRhIn0."
    elif kind == "empty":
        headers = {"Authorization": "Bearer "}
    elif kind == "basic-scheme":
        headers = {"Authorization": "Basic b2xpdmlhOnB3"}
    else:
        token = "' OR 1=1 --"
    if not headers:
        headers = {"Authorization": f"Bearer {token}"}
    before = snapshot(engine.db)
    response = api.call("POST", f"/api/v1/tasks/{demo['task']['id']}/complete", headers=headers,
                        json={"data": {"quantity": 5, "comment": "c"}})
    assert response.status_code == 401, response.json
    assert response.json["code"] in ("token_expired", "token_invalid", "unauthenticated"), response.json
    if kind == "expired":
        assert response.json["code"] == "token_expired"
    assert snapshot(engine.db) == before


# -- the web pages ------------------------------------------------------------------------------------------
def _signed_in(app: Any, engine: Gmpflow, username: str) -> Any:
    client = app.test_client()
    browser_session(app, client, engine, username)
    return client


CSRF_CASES = [("login", "/login", None, {"username": "olivia", "password": PASSWORD}),
              ("logout", "/logout", "olivia", {}),
              ("claim-task", "/tasks/{task}/claim", "olivia", {}),
              ("complete-task", "/tasks/{task}/complete", "olivia", {"quantity": "5", "comment": "c"}),
              ("create-user", "/admin/users", "ada",
               {"username": "mallory", "full_name": "M", "role": "admin"}),
              ("grant-role", "/admin/users/olivia/roles", "ada", {"role": "admin", "reason": "r"}),
              ("change-password", "/account/password", "olivia",
               {"old_password": PASSWORD, "new_password": "x" * 20, "confirm": "x" * 20})]


@pytest.mark.parametrize(("path", "who", "form"), [c[1:] for c in CSRF_CASES], ids=[c[0] for c in CSRF_CASES])
def test_a_web_form_post_without_the_csrf_token_is_refused_with_400(app: Any, api: Api, engine: Gmpflow,
                                                                    demo: dict[str, Any], path: str,
                                                                    who: str | None,
                                                                    form: dict[str, str]) -> None:
    if who:
        api.ensure_user(who)
    client = _signed_in(app, engine, who) if who else app.test_client()
    before = snapshot(engine.db)
    response = client.post(path.format(task=demo["task"]["id"]), data=form)
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert snapshot(engine.db) == before


@pytest.mark.parametrize("value", ["NaN", "Infinity", "-Infinity", '"five"', "0", "1001", "1e999"])
def test_bad_form_data_from_the_web_page_is_refused_and_nothing_changes(app: Any, api: Api, engine: Gmpflow,
                                                                        demo: dict[str, Any],
                                                                        value: str) -> None:
    client = _signed_in(app, engine, "olivia")
    page = client.get(f"/tasks/{demo['task']['id']}").get_data(as_text=True)
    token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
    before = snapshot(engine.db)
    response = client.post(f"/tasks/{demo['task']['id']}/complete", data={
        "csrf_token": token, "data": '{"quantity": %s, "comment": "c"}' % value})
    assert response.status_code == 400, response.get_data(as_text=True)[:300]
    assert snapshot(engine.db) == before


@pytest.mark.parametrize("door", ["api", "web"])
def test_login_brute_force_locks_the_account_and_changes_nothing_else(app: Any, api: Api, engine: Gmpflow,
                                                                      door: str) -> None:
    api.ensure_user("olivia")
    client = app.test_client()

    def attempt(password: str) -> tuple[int, str]:
        if door == "api":
            response = api.post("/api/v1/tokens", json={"username": "olivia", "password": password})
            return response.status_code, response.json["code"]
        page = client.get("/login").get_data(as_text=True)
        token = re.search(r'name="csrf_token" value="([^"]+)"', page).group(1)  # type: ignore[union-attr]
        response = client.post("/login", data={"username": "olivia", "password": password,
                                               "csrf_token": token})
        text = response.get_data(as_text=True)
        return response.status_code, "account_locked" if "locked" in text else (
            "invalid_credentials" if response.status_code != 302 else "ok")

    before = snapshot(engine.db)
    answers = [attempt(f"guess {i}") for i in range(8)]
    assert all(code in ("invalid_credentials", "account_locked") for _, code in answers), answers
    assert answers[-1][1] == "account_locked", answers
    status, code = attempt(PASSWORD)  # the right password no longer opens the account
    assert code == "account_locked" and status != 302, (status, code)
    after = snapshot(engine.db)
    changed = {t for t, n in after["rows"].items() if n != before["rows"][t]}
    assert changed <= {"audit_event"}, changed  # the user row changed in place; nothing was created
    actions = ({e.action for e in engine.audit_events(actor="olivia")}
               | {e.action for e in engine.audit_events(object_type="user")})
    assert "user.locked" in actions or any("lock" in a for a in actions), actions
    assert engine.verify_audit().ok


@pytest.mark.parametrize(("script", "attempts"), [
    ("n = 10**9\nline_open = 'x' * n", 1),  # refused by a guard: the same data is refused again, no retry
    ("line_open = True\nwhile line_open: pass", 3),  # stopped by the deadline: retried like any failure
], ids=["guard", "deadline"])
def test_a_heavy_script_after_a_timer_opens_an_incident(engine: Gmpflow, deploy: Callable[..., Any],
                                                         clock: Any, script: str, attempts: int) -> None:
    model = (ROOT / "tests" / "bpmn" / "timer_date.bpmn").read_text()
    deploy({"timer_date.bpmn": model.replace("<bpmn:script>line_open = True</bpmn:script>",
                                             f"<bpmn:script>{script}</bpmn:script>")})
    instance = engine.start_instance(ADMIN, "timer_date")
    clock.advance(hours=7)
    for _ in range(attempts):
        engine.run_jobs_once()
        clock.advance(minutes=5)
    (incident,) = engine.list_incidents()
    # the incident is the timer's job, whose engine steps ran the script
    assert (incident.instance_id, incident.element_id, incident.attempts) == (instance.id, "shift_start",
                                                                              attempts)
    assert "stopped after" in incident.error or "would create more than" in incident.error
    assert engine.instance_detail(instance.id)["instance"].status == "failed"
