"""Fixtures of the connector tests: a real Tryton (tests/tryton_server.py, session-scoped) and the
official B2MML schemas as the test oracle (tests/b2mml_schema.py), an OPC UA equipment server
(tests/opcua_server.py)."""

from tests.b2mml_schema import b2mml_schema  # noqa: F401
from tests.opcua_server import opcua_equipment  # noqa: F401
from tests.tryton_server import tryton  # noqa: F401
