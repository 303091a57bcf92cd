"""What the engine and the composition roots find by name rather than import: gmpflow's built-in packs
(``engine.packs``), commands (``engine.cli_host``) and the demo's simulator (``webapp/cli.py``), each skipped
when its package is not installed, so that the import rules of ``tests/test_layout.py`` hold and an
installation without one of the packages still works."""

from __future__ import annotations

import importlib
from types import ModuleType


def import_if_present(module_name: str) -> ModuleType | None:
    """The module, or None when it (or a package above it) is not installed. A module that is there but fails
    to import, a dependency of its own missing included, raises: a broken installation is said, not hidden."""
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name is not None and (module_name == exc.name or module_name.startswith(exc.name + ".")):
            return None
        raise


def load_by_name(target: str) -> object | None:
    """The object ``"module:attribute"`` names, or None when its module is not installed."""
    module_name, _, attribute = target.partition(":")
    module = import_if_present(module_name)
    return None if module is None else getattr(module, attribute)
