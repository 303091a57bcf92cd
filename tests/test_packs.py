"""Process packs (``engine.packs``): the GMP content and a site's own pack reach the engine through the same
hooks; without a pack the engine is generic (no batch, lot or change-control operation, no GMP service)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Column, Integer, MetaData, Table

from engine.audit import Actor
from engine.errors import PackMissing
from engine.operations import CallContext, Operation
from engine.packs import DemoStep, default_packs, hookimpl, pack_manager, schema
from engine.services import Gmpflow
from engine.store import Database
from gmp.services import GmpServices


class SiteServices:
    """A site pack's services, asked for by their type: ``engine.pack(SiteServices)``."""

    def site_greeting(self) -> str:
        return "hello"

    def lint(self, paths: list[str]) -> str:  # may not replace the engine's own
        return "replaced"


class SitePack:
    """A site's own pack: one operation, one record kind, one demo step, one service."""

    @hookimpl
    def gmpflow_pack_operations(self, engine: Gmpflow) -> list[Operation]:
        def stamp(params: dict[str, Any], context: CallContext) -> Any:
            return {"stamped": params}
        return [Operation("site.stamp", stamp, description="Stamps its parameters.")]

    @hookimpl
    def gmpflow_record_sources(self, engine: Gmpflow) -> dict[str, Any]:
        return {"site_record": lambda session, key: {"key": key}}

    @hookimpl
    def gmpflow_demo_steps(self) -> list[DemoStep]:
        return [DemoStep("greeting", lambda engine, actor: [f"hello from {actor.id}"])]

    @hookimpl
    def gmpflow_services(self, engine: Gmpflow) -> SiteServices:
        return SiteServices()


def engine_with(tmp_path: Path, *packs: object, builtins: tuple[str, ...] = ()) -> Gmpflow:
    pm = pack_manager(builtins=builtins, load_entry_points=False)
    for pack in packs:
        pm.register(pack)
    return Gmpflow(Database(f"sqlite:///{tmp_path}/packs.db"), packs=pm)


@pytest.mark.parametrize("packs", [(), (SitePack(),)], ids=["no-pack", "a-site-pack-only"])
def test_asking_for_the_services_of_a_pack_the_engine_lacks_names_the_pack(tmp_path: Path,
                                                                         packs: tuple[object, ...]) -> None:
    engine = engine_with(tmp_path, *packs)
    with pytest.raises(PackMissing) as missing:
        engine.pack(GmpServices)
    assert (missing.value.code, isinstance(missing.value, LookupError)) == ("pack_missing", True)
    assert missing.value.context == {"service": "gmp.services.GmpServices", "pack": "gmp"}
    assert missing.value.message.startswith("No process pack of this engine offers gmp.services.GmpServices: "
                                            "the pack 'gmp' is not registered.")


def test_the_gmp_content_is_the_built_in_pack_registered_once() -> None:
    assert [name for name, _ in default_packs().list_name_plugin()] == ["gmp.pack"]


def test_without_a_pack_the_engine_knows_no_gmp_operation_record_or_service(tmp_path: Path) -> None:
    engine = engine_with(tmp_path)
    assert "lot.set_status" not in engine.registry and "change_request.open" not in engine.registry
    assert engine.record_sources == {} and engine.sealed_tables() == []
    with pytest.raises(AttributeError):
        engine.create_lot  # noqa: B018 -- a GMP service: absent without the pack, and asked for by type


def test_the_gmp_pack_brings_its_operations_record_kind_sealed_table_and_services(tmp_path: Path) -> None:
    engine = engine_with(tmp_path, builtins=("gmp.pack",))
    assert "lot.set_status" in engine.registry and "change_request.open" in engine.registry
    assert set(engine.record_sources) == {"batch"}
    assert [t.table for t in engine.sealed_tables()] == ["equipment_log"]
    assert isinstance(engine.pack(GmpServices), GmpServices)
    assert engine.pack(GmpServices).engine is engine  # bound to the engine that asked


def test_a_site_pack_plugs_in_through_the_same_hooks(tmp_path: Path) -> None:
    from engine import bootstrap

    engine = engine_with(tmp_path, SitePack())
    assert "site.stamp" in engine.registry
    assert set(engine.record_sources) == {"site_record"}
    assert engine.pack(SiteServices).site_greeting() == "hello"
    assert engine.lint([]) != "replaced"  # the engine's own method stays; a pack's is asked for by its type
    assert bootstrap.load_demo_steps(engine, Actor("init", "init")) == ["hello from init"]


def test_the_gmp_pack_brings_its_tables_into_the_engine_schema() -> None:
    pm = pack_manager(builtins=("gmp.pack",), load_entry_points=False)
    assert {"lot", "lot_event", "equipment_log"} <= set(schema(pm).tables)
    names = [t.name for tables in pm.hook.gmpflow_tables() for t in tables]
    assert names == ["lot", "lot_event", "equipment_log"]


class StrayTablePack:
    """A pack whose table is on a metadata of its own: no migration check or schema test would see it."""

    @hookimpl
    def gmpflow_tables(self) -> list[Table]:
        return [Table("site_stray", MetaData(), Column("id", Integer, primary_key=True))]


def test_a_pack_table_off_the_engine_metadata_is_refused() -> None:
    pm = pack_manager(builtins=(), load_entry_points=False)
    pm.register(StrayTablePack())
    with pytest.raises(ValueError, match="site_stray"):
        schema(pm)
