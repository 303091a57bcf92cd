"""What ``gmpflow init`` loads: the shipped models (first deployment bypasses change control) and demo users."""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import select

from engine.audit import Actor
from engine.errors import Conflict
from engine.services import Gmpflow
from engine.states import DeploymentStatus
from engine.store.models import Deployment

PROCESSES = Path(__file__).resolve().parents[1] / "processes"
DEMO_USERS = [
    ("olivia", "Olivia Operator", ["operator"]),
    ("oscar", "Oscar Operator", ["operator"]),
    ("sam", "Sam Supervisor", ["supervisor"]),
    ("paula", "Paula Planner", ["planner"]),
    ("quinn", "Quinn QA", ["qa"]),
    ("quentin", "Quentin QA", ["qa"]),
    ("pete", "Pete Process-Owner", ["process_owner"]),
    ("dana", "Dana Data-Steward", ["data_steward"]),
    ("ada", "Ada Admin", ["admin"]),
]
DEMO_PASSWORD = "demo-pass-1"


def bundled_process_folders() -> list[Path]:
    return sorted(p for p in PROCESSES.iterdir() if p.is_dir() and any(p.glob("*.bpmn")))


def load_bundled_models(engine: Gmpflow, actor: Actor) -> list[tuple[Deployment, bool]]:
    """Deploy every shipped process. The very first version of each is activated at once (bootstrap
    rule): there is no approved change-control process to approve it before one is deployed."""
    results = []
    for folder in bundled_process_folders():
        dep, created = engine.deploy(actor, [folder], activate=False)
        with engine.db.read() as session:
            has_active = session.scalar(select(Deployment.id).where(
                Deployment.key == dep.key, Deployment.status == DeploymentStatus.ACTIVE)) is not None
        if created and (not has_active or engine.change_control == "off"):
            dep = engine.activate_deployment(actor, dep.id, reason="bootstrap: first deployment of a shipped model"
                                             if not has_active else "change control is off")
        results.append((dep, created))
    return results


def add_demo_users(engine: Gmpflow, actor: Actor) -> list[tuple[str, str, list[str]]]:
    added = []
    for username, name, roles in DEMO_USERS:
        try:
            engine.add_user(actor, username, name, DEMO_PASSWORD, roles)
        except Conflict:
            continue  # already there from an earlier init
        added.append((username, DEMO_PASSWORD, roles))
    return added
