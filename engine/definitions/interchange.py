"""Files drawn for other engines (Camunda 7, Camunda 8/Zeebe, SpiffArena): what gmpflow maps, refuses or
ignores.

Camunda attributes map where gmpflow has the concept:

- ``camunda:formKey`` naming a form id of the bundle -> the task's ``formId`` (``embedded:``, ``app:`` or
  ``camunda-forms:`` keys name screens of another application: ignored, said so);
- ``camunda:candidateGroups`` -> the task's role, when the task lies in no lane (a lane governs otherwise);
  one group, since a task is for one role here;
- ``camunda:assignee`` -> the task is claimed for that user when it opens (the user must hold its role);
- ``camunda:inputOutput`` -> values set before the task runs and after it completes (literals and plain
  ``${variable}`` references);
- ``camunda:candidateStarterGroups`` -> ``start.roles`` (read by ``engine.authority``).

Every other vendor attribute or extension element is named as ignored (a notice, not a problem), and an
expression that gmpflow would have to evaluate but cannot read is refused by the lint.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from typing import Any

from lxml import etree

from engine.errors import DefinitionError

BPMN_NS = "http://www.omg.org/spec/BPMN/20100524/MODEL"
CAMUNDA_NS = "http://camunda.org/schema/1.0/bpmn"
SPIFF_NS = "http://spiffworkflow.org/bpmn/schema/1.0/core"
VENDORS = {CAMUNDA_NS: "camunda", SPIFF_NS: "spiffworkflow",
           "http://camunda.org/schema/zeebe/1.0": "zeebe",
           "http://activiti.org/bpmn": "activiti", "http://flowable.org/bpmn": "flowable"}
# what gmpflow (or SpiffWorkflow for it) reads; everything else of these vendors is named as ignored
USED = {
    "spiffworkflow": {"properties", "property", "preScript", "postScript", "serviceTaskOperator",
                      "parameters", "parameter", "calledDecisionId", "messageVariable", "messagePayload",
                      "processVariableCorrelation", "propertyId", "expression", "scriptsOnInstances"},
    "camunda": {"candidateStarterGroups", "candidateGroups", "assignee", "formKey", "inputOutput",
                "inputParameter", "outputParameter"},
}
FORM_ID = re.compile(r"^[A-Za-z_][\w.-]*$")
VARIABLE_REF = re.compile(r"^\$\{\s*([A-Za-z_]\w*)\s*\}$")
JUEL = re.compile(r"[$#]\{")
ROLE_NAME = re.compile(r"[a-z][a-z0-9_]{1,49}")  # as engine.identity.ROLE_NAME
CAMUNDA_KEYS = ("formKey", "candidateGroups", "assignee")
INPUT_OUTPUT = f"./{{{BPMN_NS}}}extensionElements/{{{CAMUNDA_NS}}}inputOutput"


@dataclass(frozen=True)
class Notice:
    """Something of the file that gmpflow reads past, said so: never a reason to refuse it."""

    message: str
    file: str | None = None
    element_id: str | None = None
    line: int | None = None
    code: str = "ignored_extension"

    def to_dict(self) -> dict[str, Any]:
        return {"code": self.code, "message": self.message, "file": self.file, "element_id": self.element_id,
                "line": self.line}

    def __str__(self) -> str:
        where = ":".join(str(p) for p in (self.file, self.line) if p)
        return (f"{where} [{self.element_id}]: {self.message}" if self.element_id
                else f"{where}: {self.message}")


def _vendor_name(tag: str) -> tuple[str, str] | None:
    qname = etree.QName(tag)
    vendor = VENDORS.get(qname.namespace or "")
    return (vendor, qname.localname) if vendor else None


def _owner(node: etree._Element) -> etree._Element:
    """The BPMN element an extension belongs to (the nearest ancestor in the BPMN namespace with an id)."""
    element = node
    while element is not None and not (etree.QName(element.tag).namespace == BPMN_NS and element.get("id")):
        element = element.getparent()
    return element if element is not None else node


def camunda(node: etree._Element, name: str) -> str | None:
    return node.get(f"{{{CAMUNDA_NS}}}{name}")


def mapped_form_id(node: etree._Element) -> str | None:
    """``camunda:formKey`` when it is a plain form id (``embedded:app:...`` names another application's
    screen; beside ``camunda:formData`` it is the key of the form Camunda generates from those fields, which
    gmpflow does not: both are named as ignored)."""
    key = (camunda(node, "formKey") or "").strip()
    generated = node.find(f"./{{{BPMN_NS}}}extensionElements/{{{CAMUNDA_NS}}}formData") is not None
    return key if FORM_ID.match(key) and not generated else None


def _ignored_camunda_value(node: etree._Element, name: str, in_lane: bool) -> bool:
    """A mapped Camunda attribute whose value gmpflow cannot use here (an expression, another app's form)."""
    value = (camunda(node, name) or "").strip()
    if name == "formKey":
        return bool(value) and mapped_form_id(node) is None
    if name == "candidateGroups":
        return bool(JUEL.search(value)) or in_lane
    return bool(JUEL.search(value))  # assignee


def lane_members(root: etree._Element) -> set[str]:
    return {(ref.text or "").strip() for ref in root.iter(f"{{{BPMN_NS}}}flowNodeRef")}


def notices(file: str, root: etree._Element) -> list[Notice]:
    """One notice per element naming every vendor attribute and extension element gmpflow does not read."""
    in_lane = lane_members(root)
    found: dict[Any, list[str]] = {}
    for node in root.iter():
        if not isinstance(node.tag, str):
            continue
        owner = _owner(node)
        for attr in node.attrib:
            vendor = _vendor_name(attr)
            if vendor is None:
                continue
            if vendor[1] not in USED.get(vendor[0], ()) or (
                    vendor[0] == "camunda" and vendor[1] in CAMUNDA_KEYS
                    and _ignored_camunda_value(node, vendor[1], node.get("id") in in_lane)):
                found.setdefault(owner, []).append(f"{vendor[0]}:{vendor[1]}")
        vendor = _vendor_name(node.tag)
        if vendor is not None and vendor[0] == "camunda" and _ignored_parameter(node) \
                and vendor[1] in ("inputParameter", "outputParameter"):
            found.setdefault(owner, []).append(f"camunda:{vendor[1]} '{node.get('name')}'")
        elif vendor is not None and vendor[1] not in USED.get(vendor[0], ()):
            parent = _vendor_name(node.getparent().tag) if node.getparent() is not None else None
            if parent is None or parent[1] in USED.get(parent[0], ()):  # name the outermost only
                found.setdefault(owner, []).append(f"{vendor[0]}:{vendor[1]}")
    return [Notice(f"gmpflow does not run {', '.join(dict.fromkeys(names))} of this element: ignored.", file,
                   owner.get("id"), owner.sourceline)
            for owner, names in found.items()]


# -- the lint: what a mapped attribute must be to run here ------------------------------------------------
def _problem(message: str, file: str, node: etree._Element, code: str) -> DefinitionError:
    return DefinitionError(message, file=file, element_id=_owner(node).get("id"), line=node.sourceline,
                           code=code)


def _parameter_code(param: etree._Element) -> str | None:
    """The Python statement a ``camunda:inputParameter``/``outputParameter`` stands for (an empty one sets
    None); None when it is neither a literal text nor a plain ``${variable}`` (the lint refuses it), or when
    its name is no variable name (``Fact.type``: a Camunda local, named as ignored)."""
    name = param.get("name") or ""
    if not name.isidentifier() or len(param):  # camunda:script, camunda:list, camunda:map
        return None
    text = (param.text or "").strip()
    ref = VARIABLE_REF.match(text)
    if ref:
        return f"{name} = {ref.group(1)}"
    if JUEL.search(text) or text.startswith("="):
        return None
    return f"{name} = {text!r}" if text else f"{name} = None"


def _ignored_parameter(param: etree._Element) -> bool:
    return not (param.get("name") or "").isidentifier()


def parameter_scripts(node: etree._Element) -> tuple[str | None, str | None]:
    """``camunda:inputOutput`` of a task as (script before it runs, script after it completes)."""
    before: list[str] = []
    after: list[str] = []
    for param in node.iterfind(f"{INPUT_OUTPUT}/*"):
        code = _parameter_code(param)
        if code is not None:
            (before if etree.QName(param.tag).localname == "inputParameter" else after).append(code)
    return "\n".join(before) or None, "\n".join(after) or None


def lint_camunda(file: str, root: etree._Element, roles: set[str]) -> list[DefinitionError]:
    """The mapped Camunda attributes that cannot run as written, each with the element and the reason."""
    problems: list[DefinitionError] = []
    in_lane = lane_members(root)
    for node in root.iter(f"{{{BPMN_NS}}}*"):
        groups = (camunda(node, "candidateGroups") or "").strip()
        if groups and not JUEL.search(groups) and node.get("id") not in in_lane:
            names = [g.strip() for g in groups.split(",") if g.strip()]
            if len(names) > 1:
                problems.append(_problem(f"camunda:candidateGroups names {', '.join(names)}; a task is for "
                                         "one "
                                         "role here: name one, or draw the task in a lane.", file, node,
                                         "several_candidate_groups"))
            problems += [unknown_role(f"camunda:candidateGroups names '{name}', which is no known role", name,
                                      roles, file, node)
                         for name in names if name not in roles]
        for param in node.iterfind(f"{INPUT_OUTPUT}/*"):
            if _parameter_code(param) is None and not _ignored_parameter(param):
                problems.append(_problem(
                    f"camunda:{etree.QName(param.tag).localname} '{param.get('name')}' is a script, list, "
                    "map or expression; gmpflow maps only text values and ${variable}: write it as a "
                    "spiffworkflow:preScript or postScript in Python.", file, param, "foreign_expression"))
    return problems


def unknown_role(head: str, role: str, roles: set[str], file: str, node: etree._Element) -> DefinitionError:
    """``head`` (what names which unknown role), the known roles, and how an admin creates it."""
    return _problem(f"{head}; known roles: {', '.join(sorted(roles))}. An admin creates it with "
                    f"`gmpflow roles add {shlex.quote(role)} --description \"...\"` or POST /api/v1/roles.",
                    file, node, "unknown_role")


def assignees(trees: dict[str, etree._Element]) -> list[tuple[str, etree._Element, str]]:
    """(file, element, username) of every literal ``camunda:assignee``."""
    return [(file, node, value.strip()) for file, root in trees.items()
            for node in root.iter(f"{{{BPMN_NS}}}*")
            if (value := camunda(node, "assignee")) and value.strip() and not JUEL.search(value)]


def lane_role(name: str) -> str:
    """The role a lane names: its name as written when that is a role name, else the name in lowercase
    with runs of other characters as '_' (modelers write 'Supervisor' or 'Quality Assurance' for the roles
    ``supervisor`` and ``quality_assurance``). A name that is neither stays as written: lint refuses it."""
    if ROLE_NAME.fullmatch(name):
        return name
    folded = re.sub(r"[^a-z0-9]+", "_", name.strip().lower()).strip("_")
    return folded if ROLE_NAME.fullmatch(folded) else name


# -- the parse: carry what is mapped onto the task specs --------------------------------------------------
def apply(trees: dict[str, etree._Element], specs: list[Any]) -> None:
    """Carry the mapped Camunda attributes of each task element onto its spec: ``formId`` (unless the task
    has one), the lane from a single candidate group (unless it has a lane), ``assignee`` (in the spec's
    extensions) and the input/output parameters as pre- and post-scripts. Every lane becomes the role it
    names (``lane_role``)."""
    for spec in specs:
        for ts in spec.task_specs.values():
            if isinstance(getattr(ts, "lane", None), str):
                ts.lane = lane_role(ts.lane)
    elements = {node.get("id"): node for root in trees.values() for node in root.iter(f"{{{BPMN_NS}}}*")
                if node.get("id") and (
                    any(k.startswith(f"{{{CAMUNDA_NS}}}") for k in node.attrib)
                    or node.find(INPUT_OUTPUT) is not None)}
    if not elements:
        return
    for spec in specs:
        for ts in spec.task_specs.values():
            node = elements.get(getattr(ts, "bpmn_id", None))
            if node is not None:
                _apply_one(node, ts)


def _apply_one(node: etree._Element, ts: Any) -> None:
    extensions = ts.extensions if isinstance(getattr(ts, "extensions", None), dict) else {}
    properties = extensions.setdefault("properties", {})
    form = mapped_form_id(node)
    if form and not properties.get("formId"):
        properties["formId"] = form
    groups = (camunda(node, "candidateGroups") or "").strip()
    if groups and not JUEL.search(groups) and "," not in groups and not getattr(ts, "lane", None):
        ts.lane = groups
    assignee = (camunda(node, "assignee") or "").strip()
    if assignee and not JUEL.search(assignee):
        extensions["assignee"] = assignee
    before, after = parameter_scripts(node)
    if before and hasattr(ts, "prescript"):
        ts.prescript = "\n".join(s for s in (before, ts.prescript) if s)
    if after and hasattr(ts, "postscript"):
        ts.postscript = "\n".join(s for s in (ts.postscript, after) if s)
    ts.extensions = extensions


def assignee_of(task_spec: Any) -> str | None:
    """The user a task is claimed for when it opens (``camunda:assignee``), if any."""
    extensions = getattr(task_spec, "extensions", None)
    return extensions.get("assignee") if isinstance(extensions, dict) else None
