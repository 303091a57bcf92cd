"""Parse a bundle into SpiffWorkflow specs, translating SpiffWorkflow's errors into DefinitionError."""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

from lxml import etree
from SpiffWorkflow.bpmn.parser.BpmnParser import full_tag
from SpiffWorkflow.bpmn.parser.ValidationException import ValidationException
from SpiffWorkflow.exceptions import SpiffWorkflowException
from SpiffWorkflow.spiff.parser.process import VALIDATOR, SpiffBpmnParser
from SpiffWorkflow.spiff.parser.task_spec import ServiceTaskParser

from engine.definitions import interchange
from engine.definitions.bundle import Bundle
from engine.definitions.properties import protected_variables
from engine.dmn.service import DecisionServiceSpec, compile_bundle_dmn, decision_service_key
from engine.errors import DefinitionError
from engine.spiff.dmn import BusinessRuleTask, BusinessRuleTaskParser
from engine.spiff.state import DeferredServiceTask, wire_specs
from engine.xmlsafe import parse_xml

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
NS = {"bpmn": BPMN_NS, "spiffworkflow": "http://spiffworkflow.org/bpmn/schema/1.0/core"}


class GmpParser(SpiffBpmnParser):
    OVERRIDE_PARSER_CLASSES = {
        **SpiffBpmnParser.OVERRIDE_PARSER_CLASSES,
        full_tag("serviceTask"): (ServiceTaskParser, DeferredServiceTask),
        full_tag("businessRuleTask"): (BusinessRuleTaskParser, BusinessRuleTask),  # engine.dmn evaluates
    }

    def _add_data_stores(self, bpmn: Any) -> None:
        """gmpflow has no data stores: the lint refuses a reference to one, and a declaration that nothing
        references (files from the Camunda Modeler keep them after the reference is deleted) is ignored
        rather than refused."""


@dataclass
class ParsedDefinition:
    key: str
    name: str
    spec: Any
    subprocess_specs: dict[str, Any]
    trees: dict[str, etree._Element]  # file name -> parsed document (for linting, line numbers)
    forms: dict[str, dict[str, Any]]  # form id -> form-js definition
    # what is derived once from the immutable deployment and kept with its parse (engine.authority's gates)
    derived: dict[str, Any] = field(default_factory=dict, compare=False, repr=False)
    decisions: dict[str, Any] = field(default_factory=dict)  # decision id -> engine.dmn CompiledDmn

    @property
    def is_decision_service(self) -> bool:
        """A DMN-only deployment: its decisions are called by key from processes; it never starts."""
        return isinstance(self.spec, DecisionServiceSpec)

    @cached_property
    def protected_variables(self) -> frozenset[str]:
        """Variables no client may set (``properties.protected_variables``); derived once per deployment."""
        return protected_variables([self.spec, *self.subprocess_specs.values()])

    def element_line(self, element_id: str) -> tuple[str | None, int | None]:
        for name, root in self.trees.items():
            found = root.xpath("//*[@id=$id]", id=element_id)
            if found:
                return name, found[0].sourceline
        return None, None


def parse_documents(bundle: Bundle) -> dict[str, etree._Element]:
    """Every XML file of the bundle, parsed safely (no DTD, no entities, no network, size-limited)."""
    trees = {}
    for name, text in {**bundle.of_kind("bpmn"), **bundle.of_kind("dmn")}.items():
        trees[name] = parse_xml(text.encode("utf-8"), source=name)
    return trees


def main_process_id(trees: dict[str, etree._Element], bpmn_files: set[str], process: str | None = None
                    ) -> tuple[str, str]:
    """The bundle's key: the executable process that no call activity of the bundle calls. A file drawing
    several of them (independent pools of one collaboration) names none by itself: ``process`` says which
    one the deployment runs (as SpiffWorkflow's caller names the process it runs), else it is refused."""
    processes, called = [], set()
    for name in sorted(bpmn_files):
        root = trees[name]
        processes += [(p.get("id"), p.get("name") or p.get("id"), p.get("isExecutable", "true"), name)
                      for p in root.iterfind(f".//{{{BPMN_NS}}}process")]
        called |= {c.get("calledElement") for c in root.iterfind(f".//{{{BPMN_NS}}}callActivity")}
    candidates = [p for p in processes if p[0] not in called and p[2] != "false"]
    if not candidates:
        raise DefinitionError("The bundle has no executable process (isExecutable=\"true\").",
                              file=next(iter(sorted(bpmn_files)), None), code="no_executable_process")
    ids = ", ".join(p[0] for p in candidates)
    if process is not None:
        chosen = [p for p in candidates if p[0] == process]
        if not chosen:
            raise DefinitionError(f"The process to deploy, '{process}', is not a top-level executable "
                                  f"process of the bundle ({ids}).", file=candidates[0][3],
                                  code="process_not_found")
        return chosen[0][0], chosen[0][1]
    if len(candidates) > 1:
        raise DefinitionError(f"The bundle has several top-level executable processes ({ids}); name the one "
                              "to deploy (gmpflow deploy --process ID, one call each), or mark the others "
                              "isExecutable=\"false\".",
                              file=candidates[1][3], element_id=candidates[1][0], code="several_processes")
    return candidates[0][0], candidates[0][1]


def to_definition_error(exc: Exception, default_file: str | None = None) -> DefinitionError:
    if isinstance(exc, ValidationException):
        line = exc.line_number if isinstance(exc.line_number, int) else None
        message = str(exc.args[0]) if exc.args else str(exc)
        return DefinitionError(message, file=exc.file_name or default_file, element_id=exc.id or None,
                               line=line, code="bpmn_invalid")
    if isinstance(exc, SpiffWorkflowException):
        return DefinitionError(str(exc), file=default_file, code="bpmn_invalid")
    return DefinitionError(f"{type(exc).__name__}: {exc}", file=default_file, code="bpmn_invalid")


def parse_bundle(bundle: Bundle, trees: dict[str, etree._Element] | None = None, process: str | None = None
                 ) -> ParsedDefinition:
    """Parse (and XSD-validate) the bundle's BPMN and DMN into specs; ``process``: which top-level
    executable process it runs (``main_process_id``). Raises DefinitionError."""
    trees = trees if trees is not None else parse_documents(bundle)
    bpmn_files = set(bundle.of_kind("bpmn"))
    decisions = compile_bundle_dmn(bundle, trees)
    if not bpmn_files:
        if not decisions:
            raise DefinitionError("The bundle has no .bpmn file.", code="bundle_without_bpmn")
        key, name = decision_service_key(decisions)
        return ParsedDefinition(key, name, DecisionServiceSpec(key), {}, trees, bundle.forms(),
                                decisions=decisions)
    key, name = main_process_id(trees, bpmn_files, process)
    parser = GmpParser(validator=VALIDATOR)
    parser.gmp_decisions = decisions
    current = None
    try:
        for current in sorted(bundle.of_kind("dmn")):
            parser.add_dmn_xml(trees[current], filename=current)  # SpiffWorkflow's XSD check of the file
        for current in sorted(bpmn_files):
            parser.add_bpmn_xml(trees[current], filename=current)
        current = None
        spec = parser.get_spec(key)
        subprocess_specs = parser.get_subprocess_specs(key)
        interchange.apply(trees, [spec, *subprocess_specs.values()])
        wire_specs(spec, *subprocess_specs.values())
    except DefinitionError:
        raise
    except Exception as exc:  # SpiffWorkflow raises many kinds; translate them all at the edge
        raise to_definition_error(exc, current) from exc
    return ParsedDefinition(key, name, spec, subprocess_specs, trees, bundle.forms(), decisions=decisions)
