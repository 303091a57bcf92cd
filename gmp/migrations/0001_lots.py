"""material lots and their history (status changes, consumptions): the GMP pack's first migration

Revision ID: gmp_0001
Revises:
Until the pack had migrations of its own these tables were the engine's migration 0011 (now empty): a database
that has them already keeps them, and this revision is only recorded.
"""

import sqlalchemy as sa
from alembic import op

from engine.store.migrate import has_table

revision = 'gmp_0001'
down_revision = None
branch_labels = ('gmp',)
depends_on = None


def upgrade() -> None:
    if has_table('lot'):  # made by the engine's 0011 before the pack had migrations
        return
    op.create_table('lot',
    sa.Column('lot_id', sa.String(length=100), nullable=False),
    sa.Column('material', sa.String(length=50), nullable=False),
    sa.Column('quantity', sa.Float(), nullable=False),
    sa.Column('available', sa.Float(), nullable=False),
    sa.Column('uom', sa.String(length=20), nullable=False),
    sa.Column('expiry', sa.String(length=10), nullable=False),
    sa.Column('retest', sa.String(length=10), nullable=True),
    sa.Column('supplier_lot', sa.String(length=100), nullable=True),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('disposition_instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('lot_id')
    )
    with op.batch_alter_table('lot', schema=None) as batch_op:
        batch_op.create_index('ix_lot_material_status', ['material', 'status'], unique=False)

    op.create_table('lot_event',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('lot_id', sa.String(length=100), nullable=False),
    sa.Column('kind', sa.String(length=20), nullable=False),
    sa.Column('at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('actor_id', sa.String(length=100), nullable=False),
    sa.Column('actor_name', sa.String(length=200), nullable=False),
    sa.Column('from_status', sa.String(length=20), nullable=True),
    sa.Column('to_status', sa.String(length=20), nullable=True),
    sa.Column('quantity', sa.Float(), nullable=True),
    sa.Column('uom', sa.String(length=20), nullable=True),
    sa.Column('batch_id', sa.String(length=200), nullable=True),
    sa.Column('instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.Column('step', sa.Integer(), nullable=True),
    sa.Column('reason', sa.Text(), nullable=True),
    sa.ForeignKeyConstraint(['lot_id'], ['lot.lot_id'], ),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('lot_event', schema=None) as batch_op:
        batch_op.create_index('ix_lot_event_batch', ['batch_id'], unique=False)
        batch_op.create_index('ix_lot_event_lot', ['lot_id', 'id'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('lot_event', schema=None) as batch_op:
        batch_op.drop_index('ix_lot_event_lot')
        batch_op.drop_index('ix_lot_event_batch')
    op.drop_table('lot_event')
    with op.batch_alter_table('lot', schema=None) as batch_op:
        batch_op.drop_index('ix_lot_material_status')
    op.drop_table('lot')
