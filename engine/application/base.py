"""What every aggregate's services stand on: the parts ``engine.services.Gmpflow.__init__`` builds once."""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pluggy

    from engine.anchors import AnchorFile, CheckpointStore
    from engine.clock import Clock
    from engine.config import Config
    from engine.definitions.lint import ModelCheck
    from engine.masterdata.service import MasterData
    from engine.operations import OperationRegistry
    from engine.runtime.instances import InstanceRuntime
    from engine.runtime.jobs import JobRunner
    from engine.signed_records import RecordBinder
    from engine.store import Database


class EngineCore:
    """The engine's parts, shared by its services (each a unit of work or a read on ``db``)."""

    config: Config                 # the installation's settings (engine.config), read once at start
    db: Database
    clock: Clock
    registry: OperationRegistry
    runtime: InstanceRuntime
    jobs: JobRunner
    records: RecordBinder
    masterdata: MasterData
    packs: pluggy.PluginManager
    model_checks: list[ModelCheck]  # the packs' lint rules for their model properties
    change_control: str            # "required" or "off"
    change_control_process: str    # the key of the process that alone makes versions effective
    anchors: AnchorFile
    checkpoint_stores: list[CheckpointStore]
