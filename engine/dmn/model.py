"""A DMN file as plain data: decisions (tables and literal expressions), what each requires, the cells' text
with element ids and lines. Read from a safely parsed lxml tree; nothing here evaluates anything."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from engine.errors import DefinitionError

HIT_POLICIES = {"UNIQUE", "FIRST", "PRIORITY", "ANY", "COLLECT", "RULE ORDER", "OUTPUT ORDER"}
AGGREGATIONS = {"SUM", "MIN", "MAX", "COUNT"}


@dataclass(frozen=True)
class Cell:
    """One piece of expression text in the file: where it is, for errors and lint."""

    text: str
    element_id: str | None
    line: int | None


@dataclass
class Column:
    id: str
    name: str  # an output's name (the variable it writes); an input's label
    type_ref: str | None
    expression: Cell | None = None  # an input's inputExpression
    values: Cell | None = None  # inputValues / outputValues (PRIORITY and OUTPUT ORDER rank by them)
    default: Cell | None = None  # an output's defaultOutputEntry: its value when no rule matches


@dataclass
class Rule:
    id: str
    row: int
    inputs: list[Cell]
    outputs: list[Cell]
    description: str = ""  # the modeler's annotation: why the rule says what it says


@dataclass
class Table:
    id: str
    hit_policy: str
    aggregation: str | None
    inputs: list[Column]
    outputs: list[Column]
    rules: list[Rule]


@dataclass
class Decision:
    id: str
    name: str
    variable: str  # the name its result goes by (variable/@name, else the decision's name)
    requires: list[str]  # decision ids, evaluated first and known by their variable names
    table: Table | None = None
    literal: Cell | None = None
    file: str = ""
    line: int | None = None
    unsupported: str | None = None  # a decision logic gmpflow does not run (lint names it)


@dataclass
class DmnFile:
    name: str
    id: str
    language: str | None  # definitions/@expressionLanguage as written
    decisions: dict[str, Decision]
    input_names: list[str] = field(default_factory=list)
    input_types: dict[str, str] = field(default_factory=dict)  # input data name -> its variable's typeRef
    # input data typed by an itemDefinition with components: name -> component -> the component's typeRef
    component_types: dict[str, dict[str, str]] = field(default_factory=dict)


def _local(node: etree._Element) -> str:
    return etree.QName(node.tag).localname if isinstance(node.tag, str) else ""


def _child(node: etree._Element, name: str) -> etree._Element | None:
    return next((c for c in node if _local(c) == name), None)


def _children(node: etree._Element, name: str) -> list[etree._Element]:
    return [c for c in node if _local(c) == name]


def _text_cell(node: etree._Element | None) -> Cell | None:
    if node is None:
        return None
    text = _child(node, "text")
    return Cell((text.text if text is not None else "") or "", node.get("id"), node.sourceline)


def _href_id(node: etree._Element) -> str:
    return (node.get("href") or "").split("#")[-1]


def _description(node: etree._Element) -> str:
    found = _child(node, "description")
    return (found.text or "").strip() if found is not None else ""


def _table(node: etree._Element) -> Table:
    inputs = []
    for i in _children(node, "input"):
        expression = _child(i, "inputExpression")
        inputs.append(
            Column(
                i.get("id") or "",
                i.get("label") or "",
                expression.get("typeRef") if expression is not None else None,
                expression=_text_cell(expression),
                values=_text_cell(_child(i, "inputValues")),
            )
        )
    outputs = [
        Column(
            o.get("id") or "",
            o.get("name") or "",
            o.get("typeRef"),
            values=_text_cell(_child(o, "outputValues")),
            default=_text_cell(_child(o, "defaultOutputEntry")),
        )
        for o in _children(node, "output")
    ]
    rules = []
    for row, rule in enumerate(_children(node, "rule"), start=1):
        rules.append(
            Rule(
                rule.get("id") or f"row {row}",
                row,
                [c for c in map(_text_cell, _children(rule, "inputEntry")) if c is not None],
                [c for c in map(_text_cell, _children(rule, "outputEntry")) if c is not None],
                _description(rule),
            )
        )
    return Table(
        node.get("id") or "",
        (node.get("hitPolicy") or "UNIQUE").upper(),
        (node.get("aggregation") or "").upper() or None,
        inputs,
        outputs,
        rules,
    )


def _type_ref(component: etree._Element) -> str:
    node = _child(component, "typeRef")
    return (node.text or "").strip() if node is not None else ""


def read_dmn(name: str, root: etree._Element) -> DmnFile:
    """The decisions of one DMN document. Raises DefinitionError when it is no DMN ``definitions``."""
    if _local(root) != "definitions" or "DMN" not in (etree.QName(root.tag).namespace or "").upper():
        raise DefinitionError(
            "The file is not a DMN document (a dmn:definitions root).", file=name, code="dmn_invalid"
        )
    decisions: dict[str, Decision] = {}
    for node in _children(root, "decision"):
        variable = _child(node, "variable")
        decision_name = node.get("name") or node.get("id") or ""
        decision = Decision(
            node.get("id") or "",
            decision_name,
            variable.get("name") if variable is not None and variable.get("name") else decision_name,
            [
                _href_id(r)
                for req in _children(node, "informationRequirement")
                for r in _children(req, "requiredDecision")
            ],
            file=name,
            line=node.sourceline,
        )
        table, literal = _child(node, "decisionTable"), _child(node, "literalExpression")
        if table is not None:
            decision.table = _table(table)
        elif literal is not None:
            decision.literal = _text_cell(literal)
        else:
            logic = next(
                (
                    _local(c)
                    for c in node
                    if _local(c)
                    not in (
                        "description",
                        "extensionElements",
                        "variable",
                        "question",
                        "allowedAnswers",
                        "informationRequirement",
                        "knowledgeRequirement",
                        "authorityRequirement",
                    )
                ),
                None,
            )
            decision.unsupported = f"decision logic '{logic}'" if logic else "a decision without logic"
        decisions[decision.id] = decision
    inputs = [i.get("name") or "" for i in _children(root, "inputData")]
    types = {i.get("name") or "": variable.get("typeRef") or "" for i in _children(root, "inputData")
             if (variable := _child(i, "variable")) is not None and variable.get("typeRef")}
    items = {item.get("name") or "": {c.get("name") or "": _type_ref(c)
                                      for c in _children(item, "itemComponent")}
             for item in _children(root, "itemDefinition")}
    components = {name: items[type_ref] for name, type_ref in types.items() if items.get(type_ref)}
    return DmnFile(name, root.get("id") or "", root.get("expressionLanguage"), decisions, inputs, types,
                   components)
