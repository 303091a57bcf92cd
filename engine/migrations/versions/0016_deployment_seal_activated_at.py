"""deployment row MAC covers activated_at: change control's governance decides from the sealed row alone

``gmp.governance.check_governed`` used to compare a deployment's provenance (``activated_via``,
``approved_by_instance_id``, ``activated_at``) with its latest ``deployment.active`` audit event; it now reads
the row and checks its MAC, so every column it reads must be sealed. ``activated_at`` (did the version ever go
live) was not: the MAC covers it from here on. No column changes; rows sealed over 0015's columns are resealed
(``migrate.reseal_deployments``, with the installation's key), and a row that did not match its MAC before
keeps failing verify (and governance).

Revision ID: 0016
Revises: 0015
"""

from engine.store.migrate import reseal_deployments

revision = '0016'
down_revision = '0015'
branch_labels = None
depends_on = None

SEALED_0015 = ("key", "version", "status", "content_hash", "created_by", "approved_by_instance_id",
               "activated_via", "change_request_instance_id")
SEALED_0016 = (*SEALED_0015, "activated_at")


def upgrade() -> None:
    reseal_deployments(SEALED_0015, SEALED_0016)


def downgrade() -> None:
    reseal_deployments(SEALED_0016, SEALED_0015)
