"""record lock: a record closed by its disposition, opened again only by a governed reopen

Revision ID: 0007
Revises: 0004
"""

import sqlalchemy as sa
from alembic import op

revision = '0007'
down_revision = '0004'
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table('record_lock',
    sa.Column('id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('record_key', sa.String(length=200), nullable=False),
    sa.Column('locked_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('locked_by', sa.String(length=100), nullable=False),
    sa.Column('holder_instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=False),
    sa.Column('unlocked_at', sa.DateTime(timezone=True), nullable=True),
    sa.Column('unlocked_by', sa.String(length=100), nullable=True),
    sa.Column('unlock_instance_id', sa.BigInteger().with_variant(sa.Integer(), 'sqlite'), nullable=True),
    sa.PrimaryKeyConstraint('id')
    )
    with op.batch_alter_table('record_lock', schema=None) as batch_op:
        batch_op.create_index('ix_record_lock_key', ['record_key', 'unlocked_at'], unique=False)


def downgrade() -> None:
    with op.batch_alter_table('record_lock', schema=None) as batch_op:
        batch_op.drop_index('ix_record_lock_key')

    op.drop_table('record_lock')
