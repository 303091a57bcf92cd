"""The lock files install exactly what pyproject.toml pins (requirements/README.md: how to regenerate)."""

from __future__ import annotations

import re
import tomllib

import pytest

from tests.conftest import ROOT

PIN = re.compile(r"^([A-Za-z0-9_.-]+)(?:\[[^\]]*\])?==([^\s;]+)")
LOCKED = re.compile(r"^([a-z0-9_.-]+)==(\S+) \\$", re.MULTILINE)


def _key(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(*groups: str) -> dict[str, str]:
    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    lines = list(project["dependencies"])
    for group in groups:
        lines += project["optional-dependencies"][group]
    found = {}
    for line in lines:
        match = PIN.match(line)
        assert match, f"pyproject.toml pins every dependency exactly; '{line}' is not an exact pin"
        found[_key(match[1])] = match[2]
    return found


def _locked(name: str) -> dict[str, str]:
    text = (ROOT / "requirements" / name).read_text()
    assert "--hash=sha256:" in text
    return {_key(n): v for n, v in LOCKED.findall(text)}


@pytest.mark.parametrize(("lock", "groups"), [("app.lock", ("postgres",)),
                                               ("test.lock", ("postgres", "test"))])
def test_every_pinned_dependency_is_locked_at_its_pinned_version(lock: str, groups: tuple[str, ...]) -> None:
    locked = _locked(lock)
    differing = {name: (pin, locked.get(name)) for name, pin in _pins(*groups).items()
                 if locked.get(name) != pin}
    assert differing == {}, f"{lock} disagrees with pyproject.toml (pin, locked): {differing}; regenerate it"


def test_the_app_lock_is_the_test_lock_without_the_test_tools() -> None:
    app, test = _locked("app.lock"), _locked("test.lock")
    assert {name: test.get(name) for name in app} == app
    assert "pytest" in test and "pytest" not in app
