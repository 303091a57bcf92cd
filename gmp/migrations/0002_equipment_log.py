"""the equipment logbook: cleaned, in use by a batch, released (dirty), maintenance, calibration

Revision ID: gmp_0002
Revises: gmp_0001
Until the pack had migrations of its own this table was the engine's migration 0013 (now empty): a database
that has it already keeps it (and its triggers), and this revision is only recorded.
"""

import sqlalchemy as sa
from alembic import op

from engine.store.append_only import drop_append_only, make_append_only
from engine.store.migrate import has_table

revision = 'gmp_0002'
down_revision = 'gmp_0001'
branch_labels = None
depends_on = None


def upgrade() -> None:
    if has_table('equipment_log'):  # made by the engine's 0013 before the pack had migrations
        return
    op.create_table('equipment_log',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('equipment_id', sa.String(length=50), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.String(length=100), nullable=False),
    sa.Column('actor_name', sa.String(length=200), nullable=False),
    sa.Column('batch_id', sa.String(length=200), nullable=True),
    sa.Column('product', sa.String(length=50), nullable=True),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('performed_by', sa.String(length=100), nullable=True),
    sa.Column('verified_by', sa.String(length=100), nullable=True),
    sa.Column('note', sa.Text(), nullable=True),
    sa.Column('row_mac', sa.String(length=64), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('equipment_log', schema=None) as batch_op:
        batch_op.create_index('ix_equipment_log_batch', ['batch_id'], unique=False)
        batch_op.create_index('ix_equipment_log_equipment', ['equipment_id', 'id'], unique=False)
    make_append_only('equipment_log')


def downgrade() -> None:
    drop_append_only('equipment_log')
    with op.batch_alter_table('equipment_log', schema=None) as batch_op:
        batch_op.drop_index('ix_equipment_log_equipment')
        batch_op.drop_index('ix_equipment_log_batch')
    op.drop_table('equipment_log')
