"""What ``gmpflow init`` loads: the packs' shipped models (first deployment bypasses change control), demo
users, demo master data (made effective directly, also by the bootstrap rule) and the packs' demo steps."""

from __future__ import annotations

import json
import re
from datetime import date, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import select

from engine.audit import Actor
from engine.errors import Conflict
from engine.masterdata import effective, importer, records
from engine.services import Gmpflow
from engine.states import Activation, DeploymentStatus
from engine.store.models import Deployment, MasterDataRecord, MasterDataVersion

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


def bundled_process_folders(engine: Gmpflow) -> list[Path]:
    """The process folders the engine's packs ship (``engine.packs``: ``gmpflow_process_folders``)."""
    return [folder for folders in engine.packs.hook.gmpflow_process_folders() for folder in folders]


def load_bundled_models(engine: Gmpflow, actor: Actor) -> list[tuple[Deployment, bool]]:
    """Deploy every shipped process (see ``deploy_shipped``)."""
    return [deploy_shipped(engine, actor, folder) for folder in bundled_process_folders(engine)]


def deploy_shipped(engine: Gmpflow, actor: Actor, folder: Path) -> tuple[Deployment, bool]:
    """Deploy one shipped process. Its very first version is activated at once (bootstrap rule: there is no
    approved change-control process to approve it before one is deployed), recorded as ``init`` so that a
    change-control version resting on it is checkable; later versions stay drafts unless change control is
    off."""
    dep, created = engine.deploy(actor, [folder], activate=False)
    with engine.db.read() as session:
        has_active = session.scalar(select(Deployment.id).where(
            Deployment.key == dep.key, Deployment.status == DeploymentStatus.ACTIVE)) is not None
    if created and not has_active:
        dep = engine.activate_deployment(actor, dep.id, activated_via=Activation.INIT,
                                         reason="bootstrap: first deployment of a shipped model")
    elif created and engine.change_control == "off":
        dep = engine.activate_deployment(actor, dep.id, reason="change control is off",
                                         activated_via=Activation.DIRECT)
    return dep, created


def add_demo_users(engine: Gmpflow, actor: Actor) -> list[tuple[str, str, list[str]]]:
    added = []
    for username, name, roles in DEMO_USERS:
        try:
            engine.add_user(actor, username, name, DEMO_PASSWORD, roles)
        except Conflict:
            continue  # already there from an earlier init
        added.append((username, DEMO_PASSWORD, roles))
    return added


def demo_masterdata_files(engine: Gmpflow) -> list[Path]:
    return sorted((engine.config.masterdata_folder() / "demo").glob("*.json"))


# A demo date written relative to the day of ``init``: "@today+180d", "@today-1d" (demo data must not expire).
RELATIVE_DATE = re.compile(r"^@today([+-]\d+)d$")


def dated(value: Any, today: date) -> Any:
    """``value`` (demo JSON) with every relative date ("@today+180d") replaced by its ISO date from ``today``.

    The one place demo data gets its dates: equipment calibration, qualifications, logbook entries and any
    other dated demo record use this notation, so a demo set up on any day runs for a year or more."""
    if isinstance(value, dict):
        return {k: dated(v, today) for k, v in value.items()}
    if isinstance(value, list):
        return [dated(v, today) for v in value]
    if isinstance(value, str) and (match := RELATIVE_DATE.match(value)):
        return (today + timedelta(days=int(match.group(1)))).isoformat()
    return value


def demo_masterdata_items(engine: Gmpflow, today: date) -> list[dict[str, Any]]:
    """Every item of ``masterdata/demo/*.json``, dated from ``today`` (see ``dated``)."""
    return [dated(item, today) for path in demo_masterdata_files(engine)
            for item in json.loads(path.read_text(encoding="utf-8"))]


def load_demo_masterdata(engine: Gmpflow, actor: Actor) -> list[MasterDataVersion]:
    """Import ``masterdata/demo/*.json`` (records not there yet), dated from the day of ``init``, and make
    each version effective at once.

    Bootstrap rule, like the first deployment of a shipped model: demo data is made effective directly,
    without a change request, audited with the reason "bootstrap demo data". One transaction.
    """
    items = demo_masterdata_items(engine, engine.clock.now().date())
    with engine.db.unit_of_work() as session:
        known = {(type_name, key) for type_name, key in session.execute(
            select(MasterDataRecord.type_name, MasterDataRecord.key))}
        new = [item for item in items if (item.get("type"), item.get("key")) not in known]
        if not new:
            return []
        versions = importer.import_records(session, engine.clock, actor, new)
        for version in versions:
            records.submit(session, engine.clock, actor, version.record.type_name, version.record.key,
                           version.number)
            effective.apply(session, engine.clock, actor, version.id, None, None,
                            reason="bootstrap demo data")
        return versions


def load_demo_steps(engine: Gmpflow, actor: Actor) -> list[str]:
    """Every process pack's demo data, after the users and master data (``engine.packs``: lots, cleanings,
    ...): a line per thing added."""
    return [line for steps in engine.packs.hook.gmpflow_demo_steps() for step in steps
            for line in step.load(engine, actor)]
