"""The GMP pack's commands of the ``gmpflow`` CLI (added through ``gmpflow_cli_commands``)."""

from __future__ import annotations

import json
from typing import Any

import click

from engine.cli_support import command_engine, fail
from engine.errors import GmpflowError
from gmp.services import GmpServices


@click.command()
@click.argument("lot_id")
@click.option("--forward", is_flag=True, help="Where the lot went (a recall), not what it was made from.")
@click.option("--json", "as_json", is_flag=True, help="The graph as JSON: {root, nodes, edges}.")
def genealogy(lot_id: str, forward: bool, as_json: bool) -> None:
    """A lot's genealogy across every level: backward (its sources) or --forward (its uses)."""
    engine = command_engine()
    try:
        found = engine.pack(GmpServices).genealogy(lot_id, "forward" if forward else "backward")
    except GmpflowError as exc:
        fail(exc)
    finally:
        engine.db.dispose()  # a read-only command: no pooled connection outlives it
    if as_json:
        click.echo(json.dumps(found, indent=1))
        return
    for line in genealogy_lines(found, forward):
        click.echo(line)


def genealogy_lines(found: dict[str, Any], forward: bool) -> list[str]:
    """The graph as an indented tree from the root, one node a line with the quantity of the edge that led
    to it (a node reached twice is named again, its subtree shown once)."""
    nodes = {n["id"]: n for n in found["nodes"]}
    children: dict[str, list[dict[str, Any]]] = {}
    for edge in found["edges"]:
        children.setdefault(edge["from" if forward else "to"], []).append(edge)
    lines: list[str] = []
    seen: set[str] = set()

    def walk(node_id: str, depth: int, via: dict[str, Any] | None) -> None:
        node = nodes[node_id]
        amount = f"{via['quantity']:g} {via['uom'] or ''}".strip() + " " + ("→ " if forward else "← ") \
            if via else ""
        lines.append(f"{'  ' * depth}{amount}{node['kind']} {node_id} "
                     f"({node['material'] or '-'}, {node['status']})")
        if node_id not in seen:
            seen.add(node_id)
            for edge in children.get(node_id, []):
                walk(edge["to" if forward else "from"], depth + 1, edge)

    walk(found["root"], 0, None)
    return lines
