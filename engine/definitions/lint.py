"""Lint a bundle before it can be deployed: every problem with file, element id and line."""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Sequence
from typing import Any

from lxml import etree

from engine import sandbox
from engine.definitions import interchange, literals
from engine.definitions.bundle import Bundle
from engine.definitions.properties import check_properties, split_list, task_properties
from engine.definitions.record_properties import check_record_properties
from engine.dmn.lint import lint_decision_refs, lint_dmn
from engine.dmn.model import read_dmn
from engine.errors import DefinitionError
from engine.operations import OperationRegistry
from engine.spiff.parsing import BPMN_NS, NS, ParsedDefinition, parse_bundle, parse_documents

SUPPORTED = {
    "startEvent", "endEvent", "intermediateCatchEvent", "intermediateThrowEvent", "boundaryEvent",
    "task", "userTask", "manualTask", "scriptTask", "serviceTask", "businessRuleTask", "sendTask",
    "receiveTask",
    "exclusiveGateway", "parallelGateway", "inclusiveGateway", "eventBasedGateway",
    "subProcess", "callActivity", "transaction", "sequenceFlow", "laneSet", "lane", "flowNodeRef",
    "dataObject", "dataObjectReference", "dataStoreReference", "dataInputAssociation",
    "dataOutputAssociation",
    "ioSpecification", "dataInput", "dataOutput", "inputSet", "outputSet", "property",
    "textAnnotation", "association", "group", "extensionElements", "documentation", "incoming", "outgoing",
    "conditionExpression", "script", "multiInstanceLoopCharacteristics", "standardLoopCharacteristics",
    "loopCardinality", "completionCondition", "loopDataInputRef", "loopDataOutputRef", "inputDataItem",
    "outputDataItem", "timerEventDefinition", "timeDuration", "timeDate", "timeCycle",
    "messageEventDefinition", "errorEventDefinition", "signalEventDefinition", "escalationEventDefinition",
    "terminateEventDefinition", "cancelEventDefinition", "conditionalEventDefinition", "condition",
    "sourceRef", "targetRef", "text", "childLaneSet", "eventDefinitionRef",
    "dataInputRefs", "dataOutputRefs", "optionalInputRefs", "optionalOutputRefs", "loopCondition",
}
HUMAN_TAGS = {"userTask", "manualTask", "task"}
EXPRESSION_TAGS = {"conditionExpression", "condition", "timeDuration", "timeDate", "timeCycle",
                   "loopCardinality", "completionCondition", "loopCondition"}
TIMER_TAGS = {"timeDuration", "timeDate", "timeCycle"}
ROLE_PROPERTIES = ("start.roles", "message.senders")  # read by engine.authority
# ``start.roles``/``message.senders`` = ``engine``: no person, only the engine's own starts and sends (the
# messages between a batch and its steps: a person who could send them could plant a step or a release)
ENGINE_ONLY = "engine"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
# Camunda's expression languages, as files drawn in the Camunda Modeler carry them: JUEL ${...} / #{...},
# FEEL =...
FOREIGN_EXPRESSION = re.compile(r"\s*([$#]\{.*\}|=)", re.DOTALL)


def _local(tag: Any) -> str:
    return etree.QName(tag).localname if isinstance(tag, str) else ""


def _problem(message: str, file: str, node: etree._Element, code: str) -> DefinitionError:
    # the nearest BPMN/DMN element with an id (extension elements' and expressions' ids are not diagram's)
    element = node
    while element is not None and (element.get("id") is None or "spiffworkflow" in str(element.tag)
                                   or _local(element.tag) in EXPRESSION_TAGS
                                   or _local(element.tag).endswith("EventDefinition")):  # name the event
        element = element.getparent()
    return DefinitionError(message, file=file, element_id=element.get("id") if element is not None else None,
                           line=node.sourceline, code=code)


def _check_code(text: str | None, file: str, node: etree._Element, *,
                script: bool) -> Iterable[DefinitionError]:
    if not text or not text.strip():
        return []
    if not script and FOREIGN_EXPRESSION.match(text):
        return [_problem(f"'{text.strip()}' is a Camunda expression (JUEL or FEEL); gmpflow evaluates Python "
                         "expressions over the process variables, e.g. approved == True.", file, node,
                         "foreign_expression")]
    try:
        (sandbox.check_script if script else sandbox.check_expression)(text.strip())
    except DefinitionError as exc:
        where = f" (line {exc.line} of the {'script' if script else 'expression'})" if exc.line else ""
        return [_problem(f"{exc.message}{where}", file, node, exc.code)]
    return []


def _lint_bpmn(name: str, root: etree._Element, roles: set[str],
               registry: OperationRegistry) -> list[DefinitionError]:
    problems: list[DefinitionError] = []
    for node in root.iter():
        if not isinstance(node.tag, str) or etree.QName(node.tag).namespace != BPMN_NS:
            continue
        local = _local(node.tag)
        in_process = any(_local(a.tag) == "process" for a in node.iterancestors())
        if in_process and local not in SUPPORTED:
            problems.append(_problem(f"The BPMN element '{local}' is not supported by gmpflow.", name, node,
                                     "unsupported_element"))
        if local == "lane" and node.get("name") and interchange.lane_role(node.get("name")) not in roles:
            role = interchange.lane_role(node.get("name"))
            read = f" (read as the role '{role}')" if role != node.get("name") else ""
            head = f"The lane '{node.get('name')}'{read} names no known role"
            problems.append(interchange.unknown_role(head, role, roles, name, node))
        if local == "script":
            problems += _check_code(node.text, name, node, script=True)
        unquoted = literals.unquoted_timer(node.text) if local in TIMER_TAGS else None
        if unquoted:
            problems.append(_problem(unquoted, name, node, "timer_unquoted"))
        elif local in EXPRESSION_TAGS - {"condition"}:
            problems += _check_code(node.text, name, node, script=False)
        if in_process:
            problems += _not_runnable(name, node, local)
    problems += _lint_role_lists(name, root, roles)
    problems += interchange.lint_camunda(name, root, roles)
    for node in root.iterfind(".//spiffworkflow:preScript", NS):
        problems += _check_code(node.text, name, node, script=True)
    for node in root.iterfind(".//spiffworkflow:postScript", NS):
        problems += _check_code(node.text, name, node, script=True)
    for op in root.iterfind(".//spiffworkflow:serviceTaskOperator", NS):
        if op.get("id") not in registry:
            problems.append(_problem(f"Unknown connector operation '{op.get('id')}'; registered: "
                                     f"{', '.join(registry.names())}.", name, op, "unknown_operation"))
        else:
            problems += _check_parameter_names(registry.get(op.get("id")).params_schema, name, op)
            problems += _check_caller(registry.get(op.get("id")).only_in, name, op)
            if registry.get(op.get("id")).at_entry:
                problems.append(_problem(f"The operation '{op.get('id')}' is an entry check: a user task "
                                         "names it in its property entry.check; a service task cannot call "
                                         "it.", name, op, "entry_check_misplaced"))
        for param in op.iterfind(".//spiffworkflow:parameter", NS):
            problems += _check_code(param.get("value"), name, param, script=False)
    problems += _lint_entry_checks(name, root, registry)
    return problems


def _lint_entry_checks(file: str, root: etree._Element,
                       registry: OperationRegistry) -> list[DefinitionError]:
    """``entry.check`` (``engine.runtime.entry_checks``) on a user task names a registered entry check that
    may run in this process."""
    problems = []
    for prop in root.iterfind(".//spiffworkflow:property[@name='entry.check']", NS):
        name = prop.get("value") or ""
        task = next((a for a in prop.iterancestors() if etree.QName(a.tag).namespace == BPMN_NS
                     and _local(a.tag) != "extensionElements"), None)
        if task is None or _local(task.tag) != "userTask":
            problems.append(_problem("entry.check belongs on a user task.", file, prop,
                                     "entry_check_misplaced"))
        elif name not in registry or not registry.get(name).at_entry:
            entries = [op.name for op in registry.all() if op.at_entry]
            problems.append(_problem(f"entry.check names '{name}', which is no registered entry check; "
                                     f"registered: {', '.join(entries) or '(none)'}.", file, prop,
                                     "unknown_entry_check"))
        else:
            problems += _check_caller(registry.get(name).only_in, file, prop)
    return problems


def _lint_role_lists(file: str, root: etree._Element, roles: set[str]) -> list[DefinitionError]:
    """``start.roles`` and ``message.senders`` (and Camunda's ``candidateStarterGroups``, read as
    ``start.roles``) name known roles, like lanes."""
    named = [(prop, prop.get("name"), prop.get("value"))
             for prop in root.iterfind(".//spiffworkflow:property", NS)
             if prop.get("name") in ROLE_PROPERTIES]
    named += [(process, "candidateStarterGroups", process.get(f"{{{CAMUNDA_NS}}}candidateStarterGroups"))
              for process in root.iterfind(f".//{{{BPMN_NS}}}process")]
    return [interchange.unknown_role(f"{what} names '{role}', which is no known role", role, roles, file,
                                     node)
            for node, what, value in named for role in split_list(value)
            if role not in roles and not (role == ENGINE_ONLY and what in ROLE_PROPERTIES)]


def _not_runnable(file: str, node: etree._Element, local: str) -> list[DefinitionError]:
    """Elements that parse as BPMN but lack what gmpflow needs to run them (typically a file from another
    engine's modeler: Camunda's camunda:class, decisionRef or caseRef are not read here)."""
    if local == "serviceTask" and node.find(".//spiffworkflow:serviceTaskOperator", NS) is None:
        return [_problem("The service task names no connector operation (spiffworkflow:serviceTaskOperator); "
                         "Camunda's class, expression, delegate expression or external topic is not run "
                         "here.", file, node, "missing_operation")]
    if local == "callActivity" and not node.get("calledElement"):
        return [_problem("The call activity names no process to call (calledElement); CMMN cases are not "
                         "supported.", file, node, "missing_called_element")]
    if local == "dataStoreReference":
        return [_problem(f"The data store '{node.get('name') or node.get('id')}' has no implementation here: "
                         "remove it (outside systems are reached through connector operations).",
                         file, node, "unsupported_element")]
    return []


def _check_caller(only_in: str | None, file: str, op: etree._Element) -> list[DefinitionError]:
    """An operation reserved to one process (e.g. activation, reserved to change control) anywhere else."""
    process = next((a for a in op.iterancestors() if _local(a.tag) == "process"), None)
    if only_in is None or (process is not None and process.get("id") == only_in):
        return []
    task = next((a for a in op.iterancestors() if _local(a.tag) in ("serviceTask", "userTask")), op)
    return [_problem(f"The operation '{op.get('id')}' may only be called by the process '{only_in}', not "
                     f"by "
                     f"'{process.get('id') if process is not None else '?'}': it changes what is in force.",
                     file, task,
                     "operation_not_permitted")]


def _check_parameter_names(schema: dict[str, Any], file: str, op: etree._Element) -> list[DefinitionError]:
    """Missing required parameters, and names the schema does not declare (unless it allows any)."""
    given = [p.get("id") for p in op.iterfind(".//spiffworkflow:parameter", NS)]
    declared = schema.get("properties")
    problems = [_problem(f"The operation '{op.get('id')}' requires the parameter '{req}'.", file, op,
                         "missing_parameter") for req in schema.get("required", []) if req not in given]
    if declared is not None and schema.get("additionalProperties", False) is False:
        problems += [_problem(f"The operation '{op.get('id')}' has no parameter '{g}'; its parameters: "
                              f"{', '.join(declared) or '(none)'}.", file, op, "unknown_parameter")
                     for g in given if g not in declared]
    return problems


def _lint_tasks(parsed: ParsedDefinition, bundle: Bundle) -> list[DefinitionError]:
    forms = set(bundle.forms())
    specs = [parsed.spec, *parsed.subprocess_specs.values()]
    task_ids = {ts.bpmn_id for s in specs for ts in s.task_specs.values() if getattr(ts, "bpmn_id", None)}
    problems = []
    for spec in specs:
        for ts in spec.task_specs.values():
            if getattr(ts, "bpmn_id", None) is None:
                continue
            file, line = parsed.element_line(ts.bpmn_id)
            problems += check_properties(task_properties(ts), task_ids, forms, ts.bpmn_id, file, line)
            problems += check_record_properties(ts, ts.bpmn_id, file, line)
    return problems


# A check the installation adds (its content's model properties: gmp.record_roles.check), run on a bundle
# that parses and passes the engine's own checks.
ModelCheck = Callable[[ParsedDefinition], list[DefinitionError]]


def lint(bundle: Bundle, roles: set[str], registry: OperationRegistry,
         shared_decisions: set[str] | None = None, checks: Sequence[ModelCheck] = (),
         process: str | None = None) -> tuple[ParsedDefinition | None, list[DefinitionError]]:
    """All problems of the bundle, and the parsed definition when it parses at all. ``shared_decisions``: the
    keys of DMN files deployed alone that business rule tasks may call (None: not checked, no database);
    ``process``: which of several top-level executable processes the bundle runs."""
    try:
        bundle.forms()
        trees = parse_documents(bundle)
    except DefinitionError as exc:
        return None, [exc]
    problems: list[DefinitionError] = []
    for name, root in trees.items():
        problems += (_lint_bpmn(name, root, roles, registry) if name in bundle.of_kind("bpmn")
                     else lint_dmn(name, root))
    if not any(p.file in bundle.of_kind("dmn") for p in problems):  # the DMN files read: every task's call
        local = {d for name in bundle.of_kind("dmn") for d in read_dmn(name, trees[name]).decisions}
        for name in bundle.of_kind("bpmn"):  # a decision of the bundle or one deployed alone (engine.dmn)
            problems += lint_decision_refs(name, trees[name], local, shared_decisions)
    if problems:  # do not parse models whose scripts the sandbox refuses
        return None, problems
    try:
        parsed = parse_bundle(bundle, trees, process)
    except DefinitionError as exc:
        return None, [exc]
    problems = _lint_tasks(parsed, bundle)
    for check in checks:
        problems += check(parsed)
    return parsed, problems
