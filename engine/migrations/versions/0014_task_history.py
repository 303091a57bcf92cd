"""task_history: finished tasks that left an instance's live task tree (flat step cost, issue 19)

Revision ID: 0014
Revises: 0013
"""

import sqlalchemy as sa
from alembic import op

from engine.store.append_only import drop_append_only, make_append_only

revision = '0014'
down_revision = '0013'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('task_history',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('recorded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('tasks', sa.Text(), nullable=False),
    sa.Column('row_mac', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('task_history', schema=None) as batch_op:
        batch_op.create_index('ix_task_history_instance', ['instance_id', 'id'], unique=False)
    make_append_only("task_history")  # as audit_event and equipment_log


def downgrade() -> None:
    drop_append_only("task_history")
    with op.batch_alter_table('task_history', schema=None) as batch_op:
        batch_op.drop_index('ix_task_history_instance')
    op.drop_table('task_history')
