"""Fixtures of the tests/ folder: principals by role and a helper to deploy models given as files or
text; ``ADMIN``, ``ROOT`` and ``FIXTURES`` for the test modules. The engine on a fresh database and the
clock are in tests/engine_support.py, a plugin of the root conftest.py (shared with processes/)."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from engine.audit import Actor
from engine.identity import Principal
from engine.services import Gmpflow

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = Path(__file__).parent / "bpmn"
ADMIN = Actor("admin", "Ada Admin")


def principal(username: str, *roles: str) -> Principal:
    return Principal(username, username.title(), frozenset(roles))


@pytest.fixture
def users() -> dict[str, Principal]:
    """Principals by role name; ``users['operator2']`` is a second operator."""
    return {
        "operator": principal("olivia", "operator"),
        "operator2": principal("oscar", "operator"),
        "supervisor": principal("sam", "supervisor"),
        "qa": principal("quinn", "qa"),
        "qa2": principal("quentin", "qa"),
        "planner": principal("paula", "planner"),
        "admin": principal("ada", "admin"),
    }


@pytest.fixture
def deploy(engine: Gmpflow, tmp_path: Path, monkeypatch: pytest.MonkeyPatch):  # type: ignore[no-untyped-def]
    """Deploy a fixture file name from tests/bpmn, a path, or {file name: text}; returns the deployment.

    The fixtures' task forms (every key a task takes is declared by its form) are in tests/bpmn/forms."""
    from tests.engine_support import configure

    configure(engine, forms_path=(ROOT / "gmp" / "forms", FIXTURES / "forms"))

    def _deploy(*items: str | Path | dict[str, str]):  # type: ignore[no-untyped-def]
        paths: list[str | Path] = []
        for item in items:
            if isinstance(item, dict):
                folder = tmp_path / f"bundle{len(list(tmp_path.iterdir()))}"
                folder.mkdir()
                for name, content in item.items():
                    (folder / name).write_text(content)
                paths.append(folder)
            elif isinstance(item, str) and not os.path.sep in item and (FIXTURES / item).exists():
                paths.append(FIXTURES / item)
            else:
                paths.append(Path(item))
        dep, _ = engine.deploy(ADMIN, paths)
        return dep

    return _deploy
