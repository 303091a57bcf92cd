"""deployment.change_request_instance_id: the change request that holds a deployment in review

Until now who held a deployment under review was read back from the audit trail (the latest
``change_request.subject_claimed`` event); the state now has its column, as a master-data version's has, and
the trail only records. Backfill: each deployment ``in_review`` gets the instance of its latest claim (the
other rows stay empty: a draft was never claimed, and an active or retired one's approver is already
``approved_by_instance_id``). The row MAC covers the new column: rows sealed under the old columns are
resealed (``migrate.reseal_deployments``, with the installation's key), and a row that did not match its MAC
before keeps failing verify.

Revision ID: 0015
Revises: 0014
"""

import sqlalchemy as sa
from alembic import op

from engine.store.migrate import reseal_deployments

revision = '0015'
down_revision = '0014'
branch_labels = None
depends_on = None

CLAIMED = "change_request.subject_claimed"
SEALED_0014 = ("key", "version", "status", "content_hash", "created_by", "approved_by_instance_id",
               "activated_via")
SEALED_0015 = (*SEALED_0014, "change_request_instance_id")

deployment = sa.table("deployment", sa.column("id", sa.BigInteger()), sa.column("status", sa.String()),
                      sa.column("change_request_instance_id", sa.BigInteger()))
audit_event = sa.table("audit_event", sa.column("seq", sa.BigInteger()), sa.column("action", sa.String()),
                       sa.column("object_type", sa.String()), sa.column("object_id", sa.String()),
                       sa.column("after", sa.JSON()))


def upgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('change_request_instance_id',
                                      sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True))
    bind = op.get_bind()
    in_review = {str(i) for i in bind.scalars(sa.select(deployment.c.id)
                                              .where(deployment.c.status == "in_review"))}
    holders: dict[str, int] = {}
    for object_id, after in bind.execute(
            sa.select(audit_event.c.object_id, audit_event.c.after)
            .where(audit_event.c.action == CLAIMED, audit_event.c.object_type == "deployment")
            .order_by(audit_event.c.seq)):
        if object_id in in_review and (after or {}).get("instance_id") is not None:
            holders[object_id] = int(after["instance_id"])  # the latest claim wins
    for object_id, instance_id in holders.items():
        bind.execute(sa.update(deployment).where(deployment.c.id == int(object_id))
                     .values(change_request_instance_id=instance_id))
    reseal_deployments(SEALED_0014, SEALED_0015)


def downgrade() -> None:
    reseal_deployments(SEALED_0015, SEALED_0014)
    # ALTER TABLE ... DROP COLUMN (SQLite 3.35+): a batch copy would drop a table that instances reference
    op.drop_column('deployment', 'change_request_instance_id')
