"""Reads the DMN TCK's test files (``*-test-01.xml``): each case's input values and expected results, as the
plain values gmpflow's task data holds (numbers as Decimal, to compare exactly)."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path
from typing import Any

from lxml import etree

HERE = Path(__file__).parent / "conformance" / "dmn_tck"
NS = {"t": "http://www.omg.org/spec/DMN/20160719/testcase"}
XSI = "{http://www.w3.org/2001/XMLSchema-instance}"


@dataclass
class TckCase:
    folder: str
    model: str  # the .dmn file name
    case_id: str
    inputs: dict[str, Any]
    expected: dict[str, Any]  # decision name -> expected value

    @property
    def name(self) -> str:
        return f"{self.folder}#{self.case_id}"


def _value(node: etree._Element) -> Any:
    if node.get(f"{XSI}nil") == "true":
        return None
    components = node.findall("t:component", NS)
    if components:
        return {c.get("name"): _value(c) for c in components}
    items = node.find("t:list", NS)
    if items is not None:
        return [_value(item) for item in items.findall("t:item", NS)]
    value = node.find("t:value", NS)
    if value is not None:
        return _value(value)
    kind = (node.get(f"{XSI}type") or "").split(":")[-1]
    text = node.text or ""
    if kind in ("decimal", "double", "integer", "int", "long"):
        return Decimal(text)
    if kind == "boolean":
        return text.strip() == "true"
    return text


def cases(folder: Path) -> list[TckCase]:
    found = []
    for test_file in sorted(folder.glob("*-test-01.xml")):
        root = etree.parse(str(test_file), etree.XMLParser(resolve_entities=False, no_network=True)).getroot()
        model = root.findtext("t:modelName", namespaces=NS)
        for case in root.findall("t:testCase", NS):
            inputs = {n.get("name"): _value(n) for n in case.findall("t:inputNode", NS)}
            expected = {
                n.get("name"): _value(n.find("t:expected", NS)) for n in case.findall("t:resultNode", NS)
            }
            found.append(TckCase(folder.name, model, case.get("id"), inputs, expected))
    return found


def decision_ids_by_name(dmn_text: bytes) -> dict[str, str]:
    root = etree.fromstring(dmn_text, etree.XMLParser(resolve_entities=False, no_network=True))
    return {d.get("name"): d.get("id") for d in root
            if isinstance(d.tag, str) and etree.QName(d.tag).localname == "decision"}


def same(actual: Any, expected: Any) -> bool:
    """Compared as FEEL compares: numbers by value (10 = 10.0), lists in order, contexts by key."""
    if (
        isinstance(expected, Decimal)
        and isinstance(actual, (int, float, Decimal))
        and not isinstance(actual, bool)
    ):
        return Decimal(str(actual)) == expected
    if isinstance(expected, list):
        return (
            isinstance(actual, list)
            and len(actual) == len(expected)
            and all(same(a, e) for a, e in zip(actual, expected, strict=True))
        )
    if isinstance(expected, dict):
        return (
            isinstance(actual, dict)
            and set(actual) == set(expected)
            and all(same(actual[k], v) for k, v in expected.items())
        )
    return type(actual) is type(expected) and actual == expected
