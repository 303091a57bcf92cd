"""Copies for inspectors: the JSON, HTML and PDF copies of an instance carry the same facts."""

from __future__ import annotations

import io
import re
from html.parser import HTMLParser

import pytest

from engine.audit import canonical_json
from tests.signing_support import open_task, run_to_approval, sig


class _Text(HTMLParser):
    def __init__(self) -> None:
        super().__init__()
        self.parts: list[str] = []

    def handle_data(self, data: str) -> None:
        self.parts.append(data)


def html_text(html: str) -> str:
    parser = _Text()
    parser.feed(html)
    return " ".join(parser.parts)


def pdf_text(pdf: bytes) -> str:
    pypdf = pytest.importorskip("pypdf")
    return " ".join(page.extract_text() for page in pypdf.PdfReader(io.BytesIO(pdf)).pages)


def squeeze(text: str) -> str:
    """Whitespace removed: a PDF wraps long values (hashes, JSON) across lines."""
    return re.sub(r"\s+", "", text)


def facts(record: dict) -> list[str]:  # type: ignore[type-arg]
    """What an inspector must find in every copy."""
    found = [record["process"]["key"], str(record["process"]["version"]), record["process"]["content_hash"],
             record["instance"]["started_at"]]
    for step in record["steps"]:
        found += [step["name"], step["performed_by"], step["completed_at"], "no"]
        found += [f"{key} = {canonical_json(value)}" for key, value in step["data"].items()]
    for sig_ in record["signatures"]:
        found += [sig_["printed_name"], sig_["meaning"], sig_["signed_at"], sig_["record_hash"]]
    for event in record["audit_trail"]:
        found += [str(event["seq"]), event["action"], event["at"], event["actor_name"]]
    return found


@pytest.fixture
def released(engine, people, signed_release, clock):  # type: ignore[no-untyped-def]
    instance = run_to_approval(engine, people)
    clock.advance(minutes=7)
    task = open_task(engine, people["quinn"], instance.id, "approve")
    engine.complete_task(people["quinn"], task.id, {"decision": "release", "note": "Ünïcode & <b>ok</b>"},
                         sig("quinn", "Approved"))
    return instance


def test_the_json_copy_holds_process_steps_signatures_and_audit_trail(engine, released, signed_release):
    record = engine.instance_record(released.id)
    assert (record["process"]["key"], record["process"]["version"], record["process"]["content_hash"]) == (
        "signed_release", 1, signed_release.content_hash)
    assert [(s["element_id"], s["performed_by"], s["changed_after_entry"]) for s in record["steps"]] == [
        ("record_values", "olivia", False), ("witness", "oscar", False), ("approve", "quinn", False)]
    assert record["steps"][0]["data"] == {"quantity_kg": 12.5, "lot": "BATCH-1"}
    assert [(g["printed_name"], g["meaning"]) for g in record["steps"][2]["signatures"]] == [
        ("Quinn Example", "Approved")]
    assert [(g["printed_name"], g["meaning"]) for g in record["signatures"]] == [
        ("Oscar Example", "Verified"), ("Quinn Example", "Approved")]
    actions = [e["action"] for e in record["audit_trail"]]
    assert {"instance.started", "task.completed", "signature.created", "instance.completed"} <= set(actions)
    assert record["changed_after_entry"] is False
    assert record["instance"]["status"] == "completed"


def test_the_html_and_pdf_copies_carry_the_same_facts_as_the_json_copy(engine, released):
    record = engine.instance_record(released.id)
    html = html_text(engine.instance_record(released.id, "html"))
    pdf = pdf_text(engine.instance_record(released.id, "pdf"))
    for fact in facts(record):
        assert squeeze(fact) in squeeze(html), fact
        assert squeeze(fact) in squeeze(pdf), fact


def test_the_html_copy_escapes_entered_text(engine, released):
    html = engine.instance_record(released.id, "html")
    assert "<b>ok</b>" not in html and "&lt;b&gt;ok&lt;/b&gt;" in html
