"""The fixture modules of every test folder (tests/ and processes/), registered as plugins here: pytest
reads ``pytest_plugins`` only in the root conftest. A test receives these fixtures as parameters and
never imports them; it imports only the modules' helpers and constants."""

pytest_plugins = [
    "tests.engine_support",  # database (SQLite, and PostgreSQL when configured), clock, engine
    "tests.scenario_support",  # reload, flow: every scenario also runs with save-and-reload
    "tests.api_support",  # app, accounts, api: the REST API tests' client
    "tests.signing_support",  # people, signed_release
    "tests.masterdata_support",  # md
    "tests.batch_support",  # plant, simulator: the SOP execution and batch release world
    "tests.b2mml_schema",  # b2mml_schema: the official schemas, compiled once per session
    "tests.tryton_server",  # tryton: one real Tryton per session
    "tests.opcua_server",  # opcua_equipment
]
