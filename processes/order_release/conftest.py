"""The engine fixtures of tests/conftest.py for this process's tests (that conftest covers only tests/);
``reload`` and the other scenario fixtures come from the root conftest."""

from tests.conftest import clock, database, postgres_database, sqlite_template  # noqa: F401
