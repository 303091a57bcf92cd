"""instances by business key and process: one index on both

Looking up the instance of a process by its business key (an SOP step of a batch, an order's release) used
the index on the process key alone on SQLite, scanning every instance of that process: a 1,000-step batch
slowed down step by step.

Revision ID: 0004
Revises: 0003
"""

from alembic import op

revision = '0004'
down_revision = '0003'
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_instance_business_key')
        batch_op.create_index('ix_instance_business_key', ['business_key', 'process_key'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('process_instance', schema=None) as batch_op:
        batch_op.drop_index('ix_instance_business_key')
        batch_op.create_index('ix_instance_business_key', ['business_key'], unique=False)
