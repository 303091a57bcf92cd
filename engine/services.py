"""The engine's service layer: one object that the CLI, the web app and the tests call.

``Gmpflow`` composes the services of each aggregate (``engine.application``: deployments, change requests,
instances, tasks, jobs, users, the audit trail) over the parts it builds once (database, clock, registry,
runtime, packs), and hands out the process packs' services by their type (``engine.pack(GmpServices)``;
``engine.packs``). Each method is one unit of work (or a read). Routes and commands parse input, call one
method, render the result; they never open sessions themselves.
"""

from __future__ import annotations

from typing import TypeVar

import pluggy
from sqlalchemy.orm import Session

from engine import anchors, audit, change_diff, identity, sealed
from engine.application.audit_trail import AuditServices
from engine.application.changes import ChangeRequests
from engine.application.deployments import DeploymentServices
from engine.application.instances import InstanceServices
from engine.application.jobs import JobServices
from engine.application.tasks import TaskServices
from engine.application.users import UserServices
from engine.audit import Actor
from engine.clock import Clock
from engine.config import Config
from engine.errors import PackMissing
from engine.masterdata.service import MasterData
from engine.operations import OperationRegistry, builtin_registry
from engine.packs import default_packs
from engine.runtime.instances import InstanceRuntime
from engine.runtime.jobs import JobRunner
from engine.runtime.specs import SpecCache
from engine.signed_records import RecordBinder, RecordSource
from engine.store import Database
from engine.store.models import Setting

Service = TypeVar("Service")


class Gmpflow(DeploymentServices, ChangeRequests, InstanceServices, TaskServices, JobServices,
              UserServices, AuditServices):
    """The engine. Nothing connects or starts until a method is called."""

    def __init__(self, db: Database | None = None, clock: Clock | None = None,
                 registry: OperationRegistry | None = None, change_control: str | None = None,
                 packs: pluggy.PluginManager | None = None, config: Config | None = None) -> None:
        """``config``: the installation's settings (``engine.config``; default: built from the environment
        now); ``change_control`` overrides its mode. ``db``: default, the configured database and audit
        key."""
        self.config = config or Config.from_environ()
        self.db = db or Database(self.config.database_url, audit_key_file=self.config.audit_key_file)
        self.clock = clock or Clock()
        self.change_control_process = self.config.change_control_process
        # the process packs (engine.packs): gmpflow's GMP content and a site's own
        self.packs = packs or default_packs()
        # operations that need this engine's database (a model diff, a pack's change control, lots, ...):
        # bound here, added to a copy of the connectors' registry
        self.registry = (registry or builtin_registry()).extended(change_diff.operations(self))
        for contributed in self.packs.hook.gmpflow_pack_operations(engine=self):
            self.registry = self.registry.extended(contributed)
        self.change_control = change_control or self.config.change_control
        self.specs = SpecCache()
        self.runtime = InstanceRuntime(self.db, self.clock, self.specs)
        self.jobs = JobRunner(self.runtime, self.registry, self.config.job_lease)
        # the records a signature can cover (model property signature.record = "<kind>:<key expression>")
        self.record_sources: dict[str, RecordSource] = {}
        for sources in self.packs.hook.gmpflow_record_sources(engine=self):
            self.record_sources.update(sources)
        self.records = RecordBinder(self.record_sources, self.runtime.script_engine)
        # what lint checks beside the engine's own rules: the content's model properties
        self.model_checks = [check for checks in self.packs.hook.gmpflow_model_checks() for check in checks]
        # engine.masterdata.service
        self.masterdata = MasterData(self.db, self.clock, lambda: self.change_control,
                                     lambda: self.config.masterdata_folder())
        # checkpoints of the audit chain outside the database (engine.anchors); a site adds stores
        key = self.db.audit_key
        anchor_file = self.config.audit_anchor_file or anchors.default_anchor_file(key.path)
        self.anchors = anchors.AnchorFile(anchor_file, key)
        self.checkpoint_stores: list[anchors.CheckpointStore] = []
        # the packs' services, each found by its type (``pack``)
        self.pack_services: list[object] = list(self.packs.hook.gmpflow_services(engine=self))

    def pack(self, service: type[Service]) -> Service:
        """The services a process pack offers (hook ``gmpflow_services``), found by their type:
        ``engine.pack(GmpServices).create_lot(...)``, typed as ``GmpServices``. A subclass offered by a site's
        pack answers too. Raises PackMissing (code ``pack_missing``) when no registered pack offers one: the
        pack is not installed, or this engine was built without it."""
        for offered in self.pack_services:
            if isinstance(offered, service):
                return offered
        name, package = f"{service.__module__}.{service.__qualname__}", service.__module__.split(".", 1)[0]
        raise PackMissing(f"No process pack of this engine offers {name}: the pack '{package}' is not "
                          "registered. Install it (a built-in pack is listed in engine.packs.BUILTINS, a "
                          "site's pack is declared in the entry point group gmpflow.packs).",
                          service=name, pack=package)

    # -- set-up ---------------------------------------------------------------------------------------
    def init_database(self) -> None:
        """Create or upgrade the schema (the engine's migrations, then this engine's packs'), the default
        roles, record the change-control mode in force, and load the master-data types (a changed schema
        becomes a new type version)."""
        from engine.store.migrate import upgrade

        upgrade(self.db, self.packs)
        self.record_start()
        self.masterdata.load_types(Actor.system())

    def record_start(self) -> None:
        """Introduce the audit key if the trail has none yet (``ensure_audit_key``), then record the
        change-control mode in force."""
        self.ensure_audit_key()
        with self.db.unit_of_work() as session:
            identity.ensure_default_roles(session)
            current = session.get(Setting, "change_control")
            if current is None or current.value != self.change_control:
                audit.record(session, Actor.system(), "setting.change_control", "setting", "change_control",
                             "change control mode", at=self.clock.now(),
                             before={"mode": current.value} if current else None,
                             after={"mode": self.change_control})
                session.merge(Setting(key="change_control", value=self.change_control))

    def ensure_audit_key(self) -> None:
        """A trail without a key gets one: the key file is created (mode 0600) unless it exists, the rows
        without a MAC are sealed as found, and the ``audit.keyed`` event records it, from which on the chain's
        links are MACs (``engine.audit``). A keyed trail needs its key file: AuditKeyMissing otherwise."""
        key = self.db.audit_key
        with self.db.unit_of_work() as session:
            if audit.is_keyed(session):
                key.key  # noqa: B018 -- a keyed trail cannot be written without its key: say so now
                return
            key.create()
            audit.introduce_key(session, Actor.system(), self.clock.now(), sealed.seal_unsealed(session))

    def session(self) -> Session:
        """A read session for callers that need one query the services do not offer (tests, bench)."""
        return self.db._read()
