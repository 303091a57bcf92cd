"""deployment provenance: how each version went live (change control, init, or directly)

The change-control operations run only in a change-control version that itself went live through change
control or came with ``gmpflow init``; ``activated_via`` makes that checkable. Existing rows: a version with
an approving instance went live through change control; one whose activation was recorded with the
bootstrap reason came with init; any other activated version went live directly.

Revision ID: 0006
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = '0006'
down_revision = '0008'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.add_column(sa.Column('activated_via', sa.String(length=20), nullable=True))
    op.execute("UPDATE deployment SET activated_via = 'change_control' "
               "WHERE approved_by_instance_id IS NOT NULL")
    op.execute("UPDATE deployment SET activated_via = 'init' WHERE activated_via IS NULL "
               "AND activated_at IS NOT NULL AND EXISTS (SELECT 1 FROM audit_event e "
               "WHERE e.object_type = 'deployment' AND e.action = 'deployment.active' "
               "AND e.object_id = CAST(deployment.id AS VARCHAR(40)) AND e.reason LIKE 'bootstrap:%')")
    op.execute("UPDATE deployment SET activated_via = 'direct' "
               "WHERE activated_via IS NULL AND activated_at IS NOT NULL")


def downgrade() -> None:
    with op.batch_alter_table('deployment', schema=None) as batch_op:
        batch_op.drop_column('activated_via')
