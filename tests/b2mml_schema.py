"""The official B2MML V0701 schemas as a test oracle (../shared/b2mml, never needed at run time)."""

from __future__ import annotations

from pathlib import Path

import pytest
from lxml import etree

SCHEMAS = Path(__file__).resolve().parents[1] / ".." / "shared" / "b2mml"


@pytest.fixture(scope="session")
def b2mml_schema() -> etree.XMLSchema:
    """AllSchemas.xsd compiled once per session; tests skip, saying why, where the folder is absent."""
    entry = SCHEMAS / "AllSchemas.xsd"
    if not entry.exists():
        pytest.skip(f"the official B2MML V0701 schemas are not at {entry.resolve()} (a test oracle only)")
    return etree.XMLSchema(etree.parse(str(entry)))


def assert_valid(schema: etree.XMLSchema, message: bytes) -> None:
    doc = etree.fromstring(message)
    if not schema.validate(doc):
        errors = "\n".join(f"line {e.line}: {e.message}" for e in schema.error_log)
        raise AssertionError(f"not valid B2MML V0701:\n{errors}\n{message.decode()}")
