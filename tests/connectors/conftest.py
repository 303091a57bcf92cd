"""Fixtures of the connector tests: an OPC UA equipment server (tests/opcua_server.py). The real Tryton
(tests/tryton_server.py) and the official B2MML schemas (tests/b2mml_schema.py) are session fixtures of
the root conftest.py, shared with the process tests."""

from tests.opcua_server import opcua_equipment  # noqa: F401
