"""master data: record types (schema text and hash per version), records, versions

At most one effective and at most one open (draft or in review) version per record, enforced by
partial unique indexes; "the version in force at T" reads the (record_id, effective_from) index.

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = '0003'
down_revision = '0002'
branch_labels = None
depends_on = None

BIG_ID = sa.BigInteger().with_variant(sa.Integer(), 'sqlite')
ONE_EFFECTIVE = "status = 'effective'"
ONE_OPEN = "status IN ('draft', 'in_review')"


def upgrade() -> None:
    op.create_table('masterdata_type',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('name', sa.String(length=100), nullable=False),
    sa.Column('version', sa.Integer(), nullable=False),
    sa.Column('title', sa.String(length=200), nullable=False),
    sa.Column('schema_text', sa.Text(), nullable=False),
    sa.Column('schema_hash', sa.String(length=64), nullable=False),
    sa.Column('loaded_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('loaded_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('name', 'version')
    )
    op.create_table('masterdata_record',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('type_name', sa.String(length=100), nullable=False),
    sa.Column('key', sa.String(length=200), nullable=False),
    sa.Column('title', sa.String(length=300), nullable=False),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('type_name', 'key')
    )
    op.create_table('masterdata_version',
    sa.Column('id', BIG_ID, nullable=False),
    sa.Column('record_id', BIG_ID, nullable=False),
    sa.Column('number', sa.Integer(), nullable=False),
    sa.Column('status', sa.String(length=20), nullable=False),
    sa.Column('type_id', BIG_ID, nullable=False),
    sa.Column('data', sa.JSON(), nullable=False),
    sa.Column('content_hash', sa.String(length=64), nullable=False),
    sa.Column('effective_from', sa.DateTime(timezone=True), nullable=True),
    sa.Column('effective_until', sa.DateTime(timezone=True), nullable=True),
    sa.Column('change_request_instance_id', BIG_ID, nullable=True),
    sa.Column('created_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('created_by', sa.String(length=100), nullable=False),
    sa.Column('changed_at', sa.DateTime(timezone=True), nullable=False),
    sa.Column('changed_by', sa.String(length=100), nullable=False),
    sa.ForeignKeyConstraint(['record_id'], ['masterdata_record.id'], ),
    sa.ForeignKeyConstraint(['type_id'], ['masterdata_type.id'], ),
    sa.PrimaryKeyConstraint('id'),
    sa.UniqueConstraint('record_id', 'number')
    )
    with op.batch_alter_table('masterdata_version', schema=None) as batch_op:
        batch_op.create_index('ix_masterdata_version_effective_from', ['record_id', 'effective_from'],
                              unique=False)
        batch_op.create_index('ux_masterdata_version_one_effective', ['record_id'], unique=True,
                              sqlite_where=sa.text(ONE_EFFECTIVE), postgresql_where=sa.text(ONE_EFFECTIVE))
        batch_op.create_index('ux_masterdata_version_one_open', ['record_id'], unique=True,
                              sqlite_where=sa.text(ONE_OPEN), postgresql_where=sa.text(ONE_OPEN))


def downgrade() -> None:
    op.drop_table('masterdata_version')
    op.drop_table('masterdata_record')
    op.drop_table('masterdata_type')
