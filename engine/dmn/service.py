"""DMN files deployed alone: a decision service. Its key is the decision no other decision of the files
requires (the one a process calls); several such decisions: the key is the DMN ``definitions`` id, and each
decision stays callable through the engine's API by deployment key and decision id."""

from __future__ import annotations

from typing import Any

from lxml import etree

from engine.definitions.bundle import Bundle
from engine.dmn.decide import CompiledDmn, compile_dmn
from engine.dmn.model import read_dmn
from engine.errors import DefinitionError
from engine.feel import FeelSyntaxError


class DecisionServiceSpec:
    """Stands where a process spec would: no tasks, so every loop over a deployment's tasks finds none."""

    def __init__(self, key: str) -> None:
        self.name = key
        self.task_specs: dict[str, Any] = {}
        self.description = key
        self.file = None


def compile_bundle_dmn(bundle: Bundle, trees: dict[str, etree._Element]) -> dict[str, CompiledDmn]:
    """Every decision of the bundle's DMN files by id. Raises DefinitionError (a decision id twice)."""
    found: dict[str, CompiledDmn] = {}
    for name in sorted(bundle.of_kind("dmn")):
        try:
            compiled = compile_dmn(read_dmn(name, trees[name]))
        except FeelSyntaxError as exc:  # lint names the cell; a direct parse only says which file
            raise DefinitionError(
                f"A FEEL cell cannot be read: {exc}", file=name, code="feel_unsupported"
            ) from exc
        for decision_id in compiled.dmn.decisions:
            if decision_id in found:
                raise DefinitionError(
                    f"The decision id '{decision_id}' is used in two DMN files of the bundle.",
                    file=name,
                    element_id=decision_id,
                    code="duplicate_decision",
                )
            found[decision_id] = compiled
    return found


def decision_service_key(decisions: dict[str, CompiledDmn]) -> tuple[str, str]:
    """The (key, name) of a DMN-only bundle."""
    required = {r for c in decisions.values() for d in c.dmn.decisions.values() for r in d.requires}
    top = [c.dmn.decisions[i] for i, c in decisions.items() if i not in required]
    if len(top) == 1:
        return top[0].id, top[0].name
    files = {id(c): c for c in decisions.values()}
    if len(files) == 1:
        dmn = next(iter(files.values())).dmn
        if dmn.id:
            return dmn.id, dmn.id
    raise DefinitionError(
        "The DMN files hold several top-level decisions "
        f"({', '.join(sorted(d.id for d in top))}); deploy one file with a definitions id, "
        "or one top-level decision per deployment.",
        code="several_decisions",
    )
