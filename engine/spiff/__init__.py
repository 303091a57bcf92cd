"""The one package that imports SpiffWorkflow (pinned exactly: its API moves between minors).

parsing (specs from a bundle), script_engine (the sandbox as SpiffWorkflow's script engine), dmn (the business
rule task), tasks and events (what the engine asks of a running workflow), workflow (its class and errors),
clock (timers on the engine's clock) and state (the instance state, without its spec). Every private API and
monkeypatch used here is pinned by tests/test_spiff_seam.py, so an upgrade fails there first."""

UPSTREAM_VERSION = "3.2.0"  # the release every adaptation in this package was written against
