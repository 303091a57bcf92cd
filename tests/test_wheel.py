"""A wheel built from the repository, installed into a fresh virtual environment, runs `gmpflow init --demo`
in an empty folder and serves the app: its models, forms, schemas, templates and static files are package
data found through package resources, not files of a source checkout (scripts/check-wheel does the work).

Marked slow (about a minute: a wheel build, a virtual environment, an init, a server start); it runs with
the suite and is left out by `-m "not slow"`."""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.conftest import ROOT

pytestmark = pytest.mark.slow


def test_an_installed_wheel_initialises_a_demo_site_and_serves_the_app() -> None:
    if not (ROOT / "webapp" / "static" / "dist" / "modeler.js").is_file():
        pytest.skip("webapp/static/dist is not built (npm run build)")
    done = subprocess.run([sys.executable, str(ROOT / "scripts" / "check-wheel")], capture_output=True,
                          text=True, timeout=900)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "GET /login 200" in done.stdout and "GET /static/dist/modeler.js 200" in done.stdout
    assert "models active" in done.stdout and "the wheel works" in done.stdout
