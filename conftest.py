"""Shared by every test folder (tests/ and processes/): the scenario fixtures (tests/scenario_support.py,
registered here so that it is a plugin before any test module imports it), one real Tryton per session
(tests/tryton_server.py) and the official B2MML schemas compiled once (tests/b2mml_schema.py). Declared at
the root so the connector tests and the process tests share them instead of starting two."""

from tests.b2mml_schema import b2mml_schema  # noqa: F401
from tests.tryton_server import tryton  # noqa: F401

pytest_plugins = ["tests.scenario_support"]
