"""The genealogy page: a lot's graph drawn as server-rendered SVG (no script: the CSP forbids inline ones),
with the same nodes and edges as a table for screen readers. Who may read it is the engine's rule of records
(``GmpServices.genealogy``)."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, render_template, request

from gmp.genealogy import DIRECTIONS
from gmp.services import GmpServices
from webapp.guard import engine, principal, signed_in

bp = Blueprint("genealogy", __name__)
NODE_W, NODE_H, COL_GAP, ROW_GAP, MARGIN = 190, 54, 90, 24, 20


def layout(found: dict[str, Any], forward: bool) -> dict[str, Any]:
    """Columns by distance from the root (sources left of what they made, whichever way it was walked);
    nodes placed top-down within a column; edges as lines between the sides of their nodes."""
    depth = {found["root"]: 0}
    frontier = [found["root"]]
    while frontier:
        following = []
        for node in frontier:
            for edge in found["edges"]:
                near, far = (edge["from"], edge["to"]) if forward else (edge["to"], edge["from"])
                if near == node and far not in depth:
                    depth[far] = depth[node] + 1
                    following.append(far)
        frontier = following
    deepest = max(depth.values())
    rows: dict[int, int] = {}
    boxes = {}
    for node in found["nodes"]:
        level = depth.get(node["id"], 0)
        column = level if forward else deepest - level
        row = rows.get(column, 0)
        rows[column] = row + 1
        boxes[node["id"]] = {**node, "x": MARGIN + column * (NODE_W + COL_GAP),
                             "y": MARGIN + row * (NODE_H + ROW_GAP), "root": node["id"] == found["root"]}
    lines = [{**edge, "x1": boxes[edge["from"]]["x"] + NODE_W, "y1": boxes[edge["from"]]["y"] + NODE_H // 2,
              "x2": boxes[edge["to"]]["x"], "y2": boxes[edge["to"]]["y"] + NODE_H // 2}
             for edge in found["edges"] if edge["from"] in boxes and edge["to"] in boxes]
    return {"boxes": list(boxes.values()), "lines": lines, "node_w": NODE_W, "node_h": NODE_H,
            "width": 2 * MARGIN + (deepest + 1) * NODE_W + deepest * COL_GAP,
            "height": 2 * MARGIN + max(rows.values(), default=1) * (NODE_H + ROW_GAP)}


@bp.get("/genealogy/<lot_id>")
@signed_in
def genealogy(lot_id: str) -> Any:
    direction = request.args.get("direction", "backward")
    direction = direction if direction in DIRECTIONS else "backward"
    found = engine().pack(GmpServices).genealogy(lot_id, direction, reader=principal())
    return render_template("genealogy/graph.html", found=found, direction=direction,
                           drawing=layout(found, direction == "forward"))
