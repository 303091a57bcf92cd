"""The connector framework: pluggy hooks, built-ins and third-party plugins alike, the registry the
composition roots build, secrets kept out of errors, lint of service-task parameters, element templates."""

from __future__ import annotations

import inspect
import json
import sys
import textwrap
from pathlib import Path

import pytest
from click.testing import CliRunner

from connectors import hookspecs, plugins
from engine.errors import ConnectorError, DefinitionError
from engine.operations import CallContext, Operation, OperationRegistry, configured_registry
from engine.services import Gmpflow

ROOT = Path(__file__).resolve().parents[1]
ERP_OPERATIONS = {"erp.get_production_order", "erp.set_order_state", "erp.report_production",
                  "erp.set_lot_disposition"}


def test_the_registry_holds_the_engine_built_ins_and_every_built_in_connectors_operations() -> None:
    names = set(plugins.build_registry({}).names())
    assert {"echo", "fail"} <= names
    assert ERP_OPERATIONS <= names


def test_every_operation_declares_object_parameters_and_a_description() -> None:
    for op in plugins.build_registry({}).all():
        assert op.params_schema.get("type") == "object", op.name
        assert op.description, op.name


def test_the_composition_roots_get_the_connectors_through_the_registry_entry_point() -> None:
    assert ERP_OPERATIONS <= set(configured_registry().names())


def test_an_unconfigured_connector_lints_alike_but_its_calls_say_what_to_set() -> None:
    op = plugins.build_registry({}).get("erp.get_production_order")
    with pytest.raises(ConnectorError) as err:
        op.call({"order": "1"}, CallContext("t", 1, 1))
    assert err.value.code == "connector_not_configured" and not err.value.retryable
    assert "GMPFLOW_TRYTON_URL" in err.value.message


def test_an_unknown_erp_backend_is_refused_when_the_registry_is_built() -> None:
    with pytest.raises(DefinitionError) as err:
        plugins.build_registry({"GMPFLOW_ERP": "sap"})
    assert err.value.code == "bad_setting" and "tryton, simulator" in err.value.message


def test_a_third_party_connector_is_loaded_from_the_entry_point_group(tmp_path, monkeypatch) -> None:
    (tmp_path / "acme_scales.py").write_text(textwrap.dedent('''
        from connectors.hookspecs import Setting, hookimpl
        from engine.operations import Operation

        @hookimpl
        def gmpflow_settings():
            return [Setting("ACME_SCALE_URL", "The scale.")]

        @hookimpl
        def gmpflow_operations(config):
            return [Operation("scale.read_weight", lambda params, ctx: {"grams": 12.5,
                              "url": config.get("ACME_SCALE_URL")}, description="Read the scale.")]
    '''))
    info = tmp_path / "acme_scales-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: acme-scales\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text("[gmpflow.connectors]\nacme = acme_scales\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    registry = plugins.build_registry({"ACME_SCALE_URL": "http://scale.local"})
    assert registry.get("scale.read_weight").call({}, CallContext("t", 1, 1)) == {
        "grams": 12.5, "url": "http://scale.local"}
    assert "ACME_SCALE_URL" in [s.name for s in plugins.settings()]
    monkeypatch.delitem(sys.modules, "acme_scales", raising=False)


class LeakyConnector:
    """A connector whose client library puts the password in its error messages."""

    @hookspecs.hookimpl
    def gmpflow_settings(self) -> list[hookspecs.Setting]:
        return [hookspecs.Setting("LEAKY_PASSWORD", "a secret", secret=True)]

    @hookspecs.hookimpl
    def gmpflow_operations(self, config):  # type: ignore[no-untyped-def]
        def business(params, ctx):  # type: ignore[no-untyped-def]
            raise ConnectorError(f"login failed for password {config['LEAKY_PASSWORD']}", retryable=False,
                                 bpmn_error_code="denied")

        def crash(params, ctx):  # type: ignore[no-untyped-def]
            raise RuntimeError(f"http://user:{config['LEAKY_PASSWORD']}@host refused")

        return [Operation("leaky.business", business), Operation("leaky.crash", crash)]


@pytest.mark.parametrize("name", ["leaky.business", "leaky.crash"])
def test_secret_settings_never_appear_in_an_operations_errors(name: str) -> None:
    pm = plugins.plugin_manager(load_entry_points=False)
    pm.register(LeakyConnector())
    registry = plugins.build_registry({"LEAKY_PASSWORD": "hunter2-secret"}, pm=pm)
    with pytest.raises(ConnectorError) as err:
        registry.get(name).call({}, CallContext("t", 1, 1))
    assert "hunter2-secret" not in str(err.value) and "hunter2-secret" not in json.dumps(err.value.to_dict())
    assert "***" in err.value.message
    if name == "leaky.business":
        assert (err.value.bpmn_error_code, err.value.retryable) == ("denied", False)


def test_every_hook_is_documented_and_tested() -> None:
    hooks = [n for n, f in inspect.getmembers(hookspecs, inspect.isfunction) if n.startswith("gmpflow_")]
    assert hooks, "no hooks found"
    doc = hookspecs.__doc__ or ""
    tests = (Path(__file__)).read_text()
    for hook in hooks:
        assert f"``{hook}(" in doc, f"{hook} is not documented in connectors/hookspecs.py"
        assert f"def {hook}(" in tests, f"{hook} has no test implementing it"


# -- lint: service-task parameters against the operation's schema ------------------------------------------
MODEL = """<?xml version="1.0" encoding="UTF-8"?>
<bpmn:definitions xmlns:bpmn="http://www.omg.org/spec/BPMN/20100524/MODEL"
    xmlns:spiffworkflow="http://spiffworkflow.org/bpmn/schema/1.0/core" id="d" targetNamespace="t">
<bpmn:process id="p" isExecutable="true">
<bpmn:startEvent id="start"><bpmn:outgoing>f1</bpmn:outgoing></bpmn:startEvent>
<bpmn:serviceTask id="fetch"><bpmn:extensionElements>
  <spiffworkflow:serviceTaskOperator id="erp.get_production_order" resultVariable="order">
    <spiffworkflow:parameters>{params}</spiffworkflow:parameters>
  </spiffworkflow:serviceTaskOperator></bpmn:extensionElements>
  <bpmn:incoming>f1</bpmn:incoming><bpmn:outgoing>f2</bpmn:outgoing></bpmn:serviceTask>
<bpmn:endEvent id="end"><bpmn:incoming>f2</bpmn:incoming></bpmn:endEvent>
<bpmn:sequenceFlow id="f1" sourceRef="start" targetRef="fetch"/>
<bpmn:sequenceFlow id="f2" sourceRef="fetch" targetRef="end"/>
</bpmn:process></bpmn:definitions>"""


def param(name: str, value: str = "'4711'") -> str:
    return f'<spiffworkflow:parameter id="{name}" type="str" value="{value}"/>'


@pytest.fixture
def connected_engine(database, clock) -> Gmpflow:  # type: ignore[no-untyped-def]
    gmp = Gmpflow(database, clock, registry=plugins.build_registry({}), change_control="off")
    gmp.record_start()
    return gmp


@pytest.mark.parametrize(("params", "codes"), [
    (param("order"), []),
    ("", ["missing_parameter"]),
    (param("order") + param("ordr"), ["unknown_parameter"]),
    (param("odrer"), ["missing_parameter", "unknown_parameter"]),
], ids=["matches", "required-missing", "misspelt-extra", "misspelt-required"])
def test_lint_checks_service_task_parameter_names_against_the_operation(connected_engine, tmp_path, params,
                                                                        codes):
    (tmp_path / "model.bpmn").write_text(MODEL.format(params=params))
    problems = connected_engine.lint([tmp_path / "model.bpmn"])
    assert sorted(p.code for p in problems) == codes, [str(p) for p in problems]
    assert all(p.element_id == "fetch" and p.file == "model.bpmn" for p in problems)


def test_an_operation_that_declares_no_parameters_gets_a_template_naming_only_the_operation() -> None:
    registry = OperationRegistry()
    registry.register(Operation("free", lambda p, c: p))
    [template] = registry.element_templates()
    assert [p["binding"]["type"] for p in template["properties"]] == ["spiffworkflow:serviceTaskOperator"]


# -- element templates ---------------------------------------------------------------------------------------
def test_element_templates_offer_each_operation_with_its_parameters() -> None:
    templates = {t["name"]: t for t in plugins.build_registry({}).element_templates()}
    state = templates["erp.set_order_state"]
    assert state["appliesTo"] == ["bpmn:ServiceTask"] and state["id"] == "gmpflow.erp.set_order_state"
    bindings = {p["binding"].get("name"): p for p in state["properties"]}
    assert bindings["id"]["value"] == "erp.set_order_state"
    assert bindings["order"]["constraints"] == {"notEmpty": True}
    assert bindings["state"]["type"] == "Dropdown"
    assert "'running'" in [c["value"] for c in bindings["state"]["choices"]]


def test_gmpflow_connectors_templates_prints_the_templates_as_json() -> None:
    from engine.cli import main

    result = CliRunner().invoke(main, ["connectors", "templates"], env={"GMPFLOW_ERP": "tryton"})
    assert result.exit_code == 0, result.output
    names = {t["name"] for t in json.loads(result.output)}
    assert ERP_OPERATIONS <= names
