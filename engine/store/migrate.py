"""Schema migrations with Alembic, run programmatically by ``gmpflow init``.

The engine's revisions (``engine/migrations/versions``) are the branch ``engine``; each process pack that has
tables of its own ships its revisions in a folder of its own, a branch of their own (hook
``gmpflow_migrations``, ``engine.packs.PackMigrations``: the first revision has ``down_revision = None`` and
``branch_labels = (branch,)``). ``upgrade`` brings the engine's branch to its head first, then each pack's, in
the packs' order, in one transaction: a pack's revision may refer to the engine's tables. ``alembic_version``
holds one row per branch.
"""

from __future__ import annotations

import os
from collections.abc import Sequence
from pathlib import Path

import pluggy
import sqlalchemy as sa
from alembic import command, op
from alembic.config import Config

from engine.errors import AuditKeyMissing
from engine.integrity import AuditKey
from engine.packs import PackMigrations, default_packs, pack_migrations
from engine.store.db import Database
from engine.store.models import UtcDateTime

MIGRATIONS = Path(__file__).resolve().parents[1] / "migrations"
ENGINE_BRANCH = "engine"


def alembic_config(connection: object, packs: Sequence[PackMigrations] = (),
                   audit_key: AuditKey | None = None) -> Config:
    """Alembic's configuration on ``connection``, knowing the engine's revisions and the ``packs``' ones.
    ``audit_key``: the installation's, which a revision that reseals rows needs (``migrate.reseal``); without
    it such a revision refuses a database whose rows are sealed."""
    config = Config()
    config.set_main_option("script_location", str(MIGRATIONS))
    config.set_main_option("path_separator", "os")
    locations = [MIGRATIONS / "versions", *(pack.folder for pack in packs)]
    config.set_main_option("version_locations", os.pathsep.join(str(path) for path in locations))
    config.attributes["connection"] = connection
    config.attributes["audit_key"] = audit_key  # for a revision that changes what a row MAC covers
    return config


def upgrade(db: Database, packs: pluggy.PluginManager | None = None) -> None:
    """The engine's branch to its head, then each pack's (``packs``: default, the installation's)."""
    migrations = pack_migrations(packs or default_packs())
    with db.engine.begin() as connection:
        config = alembic_config(connection, migrations, db.audit_key)
        for branch in (ENGINE_BRANCH, *(pack.branch for pack in migrations)):
            command.upgrade(config, f"{branch}@head")


def has_table(name: str) -> bool:
    """For a pack's first revision of a table the engine's migrations made before the pack had its own: is the
    table there already (then the revision is only recorded)?"""
    return sa.inspect(op.get_bind()).has_table(name)


def autogenerate(db: Database, message: str, branch: str = ENGINE_BRANCH,
                 packs: pluggy.PluginManager | None = None) -> None:
    """For developers: write a new revision of ``branch`` (the engine's, or a pack's into its own folder) from
    the models' difference to the database."""
    migrations = pack_migrations(packs or default_packs())
    folders = {pack.branch: pack.folder for pack in migrations}
    folder = str(folders[branch]) if branch in folders else None
    with db.engine.begin() as connection:
        command.revision(alembic_config(connection, migrations), message=message, autogenerate=True,
                         head=f"{branch}@head", version_path=folder)


def reseal_deployments(before: tuple[str, ...], after: tuple[str, ...]) -> int:
    """For a revision that changes the columns a ``deployment`` row MAC covers (``before`` → ``after``, both
    frozen in the revision): every row whose MAC matches ``before`` gets its MAC over ``after``; a row that
    did not match keeps its MAC, so verify still names it (a migration launders no tampering). Rows without a
    MAC (no key yet) are left for the key's introduction. Returns how many were resealed. Raises
    AuditKeyMissing when rows are sealed and the key file is not there (or no key was handed over)."""
    names = sorted({*before, *after})
    # a time is sealed as an aware UTC datetime, which SQLite hands back as text unless the column is typed
    table = sa.table("deployment", sa.column("id"), sa.column("row_mac"),
                     *(sa.column(n, UtcDateTime()) if n.endswith("_at") else sa.column(n) for n in names))
    bind = op.get_bind()
    rows = bind.execute(sa.select(table).where(table.c.row_mac.is_not(None))).mappings().all()
    if not rows:
        return 0
    context_config = op.get_context().config
    key: AuditKey | None = context_config.attributes.get("audit_key") if context_config is not None else None
    if key is None:
        raise AuditKeyMissing("This revision reseals deployment rows: run it with the installation's audit "
                              "key (gmpflow init).")
    resealed = 0
    for row in rows:
        if row["row_mac"] == key.deployment_mac(row, before):
            bind.execute(sa.update(table).where(table.c.id == row["id"])
                         .values(row_mac=key.deployment_mac(row, after)))
            resealed += 1
    return resealed
