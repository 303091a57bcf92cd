"""The master-data form reads back what the steward entered, and nothing the schema already says."""

from __future__ import annotations

from werkzeug.datastructures import MultiDict

from webapp.schemaform import parse

SCHEMA = {"type": "object", "properties": {
    "critical": {"type": "boolean"},
    "required": {"type": "boolean", "default": False},
}}


def test_an_unchecked_box_is_false_unless_false_is_the_schemas_default() -> None:
    unchecked = MultiDict([("/critical?", "1"), ("/required?", "1")])
    assert parse(SCHEMA, unchecked) == {"critical": False}


def test_a_checked_box_is_true_whatever_the_default() -> None:
    checked = MultiDict([("/critical?", "1"), ("/critical", "on"), ("/required?", "1"), ("/required", "on")])
    assert parse(SCHEMA, checked) == {"critical": True, "required": True}


def test_a_box_the_form_did_not_show_is_left_out() -> None:
    assert parse(SCHEMA, MultiDict()) == {}
